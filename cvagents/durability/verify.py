"""``cvagents verify`` and the damage ``cvagents status`` shows: is every session of a workspace,
or of its mirror (a mirror reads as a partial workspace), whole?

Each problem is one line naming the file (and the line, for a journal record): a session.json
that cannot be read, a session folder that leads out of the workspace, every damage
``integrity.check`` finds in a journal, and for a mirror, every file its MANIFEST.json lists that
fails its sha256, and a session id in it that could not name a folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cvagents.config import valid_session_id
from cvagents.durability import integrity
from cvagents.durability.mirror_target import MANIFEST_NAME, open_target
from cvagents.durability.restore import RestoreError, listed_bytes, read_manifest
from cvagents.durability.session import journal_dir, sessions

__all__ = ["Verdict", "session_problems", "verify_folder"]


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)  # one line each
    sessions: int = 0
    files: int = 0  # mirror files checked against the manifest

    @property
    def sound(self) -> bool:
        return not self.problems


def session_problems(sessions_dir: Path, *, deep: bool = False) -> list[dict[str, str]]:
    """{session, problem} for every damaged session.json, session folder and journal; never raises
    for one session's damage (``deep``: unpack every archive too)."""
    out = []
    for s in sessions(sessions_dir):
        if s["damaged"]:
            out.append({"session": s["id"], "problem": s["damaged"]})
            continue
        try:
            damage, _seal = integrity.check(journal_dir(s["dir"]), deep=deep)
        except OSError as e:
            out.append({"session": s["id"], "problem": f"{e.filename or journal_dir(s['dir'])}: {e.strerror or e}"})
            continue
        out.extend({"session": s["id"], "problem": str(d)} for d in damage)
    return out


def verify_folder(root: Path, sessions_dir: Path) -> Verdict:
    """Check every session of a workspace or a mirror folder, and the mirror's manifest if any."""
    v = Verdict(sessions=len(sessions(sessions_dir)))
    if (root / MANIFEST_NAME).exists():
        _check_manifest(root, v)
    v.problems += [p["problem"] for p in session_problems(sessions_dir, deep=True)]
    return v


def _check_manifest(root: Path, v: Verdict) -> None:
    b = open_target(root)
    where = root / MANIFEST_NAME
    try:
        manifest = read_manifest(b)
    except RestoreError as e:
        v.problems.append(f"{where}: {e}")
        return
    sid = (manifest.get("extra") or {}).get("session_id")
    if sid is not None and not valid_session_id(sid):
        v.problems.append(f"{where}: extra.session_id {sid!r} is not a session id: a run resuming from here refuses it")
    for rel, meta in sorted(manifest["files"].items()):
        v.files += 1
        data, problem = listed_bytes(b, rel, meta)
        if data is None:
            v.problems.append(f"{root / rel}: {problem} (listed in {MANIFEST_NAME})")
