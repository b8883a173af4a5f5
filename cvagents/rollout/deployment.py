"""Stage deployments: versioned artifacts under ``deployment/<stage>/versions/<version>/`` and
an atomic pointer ``deployment/<stage>/manifest.json`` naming the live version.

Switching the pointer is one ``os.replace``, so a rollback is a pointer swap and a reader never
sees a stage half-deployed.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from cvagents.durability.atomic import atomic_write_json, read_json
from cvagents.durability.crashpoints import crashpoint
from cvagents.durability.hashing import sha256_file

POINTER = "manifest.json"
PARTIAL = ".partial"  # the suffix of an artifact being copied in (never left behind by a failed copy)


def live(stage_dir: Path) -> dict[str, Any] | None:
    """The live version's manifest, or None when nothing is deployed."""
    m = read_json(Path(stage_dir) / POINTER)
    return m if m and m.get("version") else None


def live_artifact(stage_dir: Path) -> Path | None:
    m = live(stage_dir)
    return Path(stage_dir) / "versions" / m["version"] / m["artifact"] if m else None


def versions(stage_dir: Path) -> list[dict[str, Any]]:
    """All versions ever deployed to the stage, oldest first."""
    out = []
    vdir = Path(stage_dir) / "versions"
    if vdir.is_dir():
        for d in sorted(vdir.iterdir()):
            m = read_json(d / "version.json")
            if m:
                out.append(m)
    return out


def by_action(stage_dir: Path, action_id: str) -> dict[str, Any] | None:
    """The version an action already installed, if any (tools are idempotent on action id)."""
    return next((m for m in versions(stage_dir) if m.get("action_id") == action_id), None)


def install(stage_dir: Path, source: Path, *, source_label: str, action_id: str, time: str) -> dict[str, Any]:
    """Copy ``source`` in as a new version and point the stage at it. Idempotent on action id:
    a second call for the same action changes nothing and returns the existing manifest."""
    stage_dir = Path(stage_dir)
    done = by_action(stage_dir, action_id)
    if done:
        return {**done, "already_done": True}
    sha = sha256_file(source)
    current = live(stage_dir)
    n = len(versions(stage_dir)) + 1
    version = f"v{n:04d}_{sha[:8]}"
    vdir = stage_dir / "versions" / version
    created = not vdir.exists()
    vdir.mkdir(parents=True, exist_ok=True)
    tmp = vdir / (source.name + PARTIAL)
    try:
        shutil.copyfile(source, tmp)
        crashpoint("deploy:partial_copy")
        if sha256_file(tmp) != sha:
            raise OSError(f"copy of {source} into {vdir} does not match its sha256")
        tmp.replace(vdir / source.name)
    except BaseException:  # a full disk, a read error, a kill signal: no half-copied artifact stays
        tmp.unlink(missing_ok=True)
        if created:
            try:
                vdir.rmdir()  # nor the empty version folder made for it
            except OSError:
                pass
        raise
    crashpoint("deploy:after_copy")
    manifest = {
        "stage": stage_dir.name,
        "version": version,
        "artifact": source.name,
        "sha256": sha,
        "source": source_label,
        "time": time,
        "action_id": action_id,
        "previous_version": current["version"] if current else None,
    }
    atomic_write_json(vdir / "version.json", manifest)
    crashpoint("deploy:before_pointer")
    atomic_write_json(stage_dir / POINTER, manifest)
    return manifest


def point_to(stage_dir: Path, version: str | None, *, action_id: str, time: str, reason: str) -> dict[str, Any]:
    """Swap the live pointer to an existing ``version`` (None: nothing live)."""
    stage_dir = Path(stage_dir)
    if version is None:
        m = {"stage": stage_dir.name, "version": None, "time": time, "action_id": action_id, "reason": reason}
    else:
        m = read_json(stage_dir / "versions" / version / "version.json")
        if not m:
            raise FileNotFoundError(f"{stage_dir}: version {version} does not exist")
        m = {**m, "pointer_time": time, "pointer_action_id": action_id, "reason": reason}
    atomic_write_json(stage_dir / POINTER, m)
    return m


def verify(stage_dir: Path) -> tuple[bool, str]:
    """Health of the live version: the artifact exists and matches its recorded sha256."""
    m = live(stage_dir)
    if not m:
        return False, "nothing deployed"
    art = live_artifact(stage_dir)
    if not art or not art.is_file():
        return False, f"artifact {art} missing"
    actual = sha256_file(art)
    if actual != m["sha256"]:
        return False, f"checksum mismatch: manifest {m['sha256'][:12]}, file {actual[:12]}"
    return True, f"{m['version']} healthy (sha256 {actual[:12]})"


def read_pointer(stage_dir: Path) -> dict[str, Any] | None:
    return read_json(Path(stage_dir) / POINTER)


DRILL = "drill_in_progress.json"


class drill:
    """Context manager for a rollback drill: saves the pointer first, always restores it."""

    def __init__(self, stage_dir: Path):
        self.stage_dir = Path(stage_dir)

    def __enter__(self) -> dict[str, Any]:
        self.original = read_pointer(self.stage_dir)
        atomic_write_json(self.stage_dir / DRILL, self.original)
        return self.original or {}

    def __exit__(self, *exc) -> None:
        recover(self.stage_dir)


def recover(stage_dir: Path) -> bool:
    """Put back the pointer a drill interrupted by a crash left swapped. True if it did."""
    saved = Path(stage_dir) / DRILL
    original = read_json(saved)
    if original is None:
        return False
    atomic_write_json(Path(stage_dir) / POINTER, original)
    saved.unlink()
    return True
