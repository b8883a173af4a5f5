"""Copy a mirror back into a workspace: every file its manifest lists, verified first."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cvagents.durability.atomic import fsync_dir
from cvagents.durability.mirror_target import MANIFEST_NAME, MirrorTarget, open_target
from cvagents.errors import CVAgentsError


class RestoreError(CVAgentsError):
    """A mirror cannot be restored (no manifest, or files that fail to verify); nothing was written."""

    def __init__(self, message: str, problems: list[str] | None = None):
        self.problems = problems or []
        super().__init__(message + ("".join(f"\n  {p}" for p in self.problems) if self.problems else ""))


@dataclass
class RestoreResult:
    files: list[str] = field(default_factory=list)  # "name/rel" restored
    bytes: int = 0
    unchanged: list[str] = field(default_factory=list)  # already present with the right content
    skipped: list[str] = field(default_factory=list)  # listed, but its source name not in dest_dirs
    extra: Any = None  # the manifest's "extra" (e.g. journal_last_seq)


def restore(
    target: str | os.PathLike, dest_dirs: Mapping[str, str | os.PathLike], *, overwrite: bool = False
) -> RestoreResult:
    """Copy a mirror back: every file MANIFEST.json lists, verified against its sha256.

    All files are verified (into temporaries beside their destinations) before any is put in
    place, so a bad mirror leaves the workspace untouched. An append-only file that has grown
    since the manifest was written is restored as the listed prefix. Existing files with other
    content raise RestoreError unless ``overwrite``.
    """
    b = open_target(target)
    manifest = read_manifest(b)
    files = manifest["files"]
    dests = {name: Path(p).absolute() for name, p in dest_dirs.items()}
    result = RestoreResult(extra=manifest.get("extra"))
    problems: list[str] = []
    staged: list[tuple[Path, Path, str, int]] = []
    try:
        for rel, meta in sorted(files.items()):
            name, _, sub = rel.partition("/")
            if name not in dests:
                result.skipped.append(rel)
                continue
            dest = (dests[name] / sub).absolute()
            data, problem = listed_bytes(b, rel, meta)
            if data is None:
                problems.append(f"{rel}: {problem}")
                continue
            size, sha = len(data), str(meta["sha256"])
            if dest.exists():
                if dest.is_file() and hashlib.sha256(dest.read_bytes()).hexdigest() == sha:
                    result.unchanged.append(rel)
                    continue
                if not overwrite:
                    problems.append(f"{rel}: {dest} exists with other content")
                    continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.restore-tmp")
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            staged.append((tmp, dest, rel, size))
        if problems:
            raise RestoreError(f"restore from {b} failed; nothing was written", problems)
        for tmp, dest, rel, size in staged:
            os.replace(tmp, dest)
            result.files.append(rel)
            result.bytes += size
        for d in {dest.parent for _, dest, _, _ in staged}:
            fsync_dir(d)
        return result
    finally:
        for tmp, _dest, _rel, _size in staged:
            tmp.unlink(missing_ok=True)


def read_manifest(b: MirrorTarget) -> dict:
    """The target's MANIFEST.json, its ``files`` a mapping; ``RestoreError`` naming it otherwise."""
    try:
        manifest = json.loads(b.read_bytes(MANIFEST_NAME))
        if not isinstance(manifest.get("files"), dict):
            raise ValueError("its files are not a mapping")
        return manifest
    except FileNotFoundError:
        raise RestoreError(f"no {MANIFEST_NAME} in {b}: not a mirror, or never completed a tick") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RestoreError(f"unreadable {MANIFEST_NAME} in {b}: {exc}") from None


def listed_bytes(b: MirrorTarget, rel: str, meta: Any) -> tuple[bytes | None, str]:
    """The bytes of one file the manifest lists, verified against its size and sha256 (an
    append-only file that grew since: its listed prefix); else None and what is wrong."""
    sub = rel.partition("/")[2] or rel  # a single-file source (executive.log) is listed by its own name
    if not sub or ".." in Path(sub).parts or Path(sub).is_absolute():
        return None, "unsafe path"
    try:
        size, sha = int(meta["size"]), str(meta["sha256"])
        data = b.read_bytes(rel)
    except (OSError, KeyError, TypeError, ValueError) as exc:
        return None, f"cannot read: {exc}"
    if len(data) > size and hashlib.sha256(data[:size]).hexdigest() == sha:
        data = data[:size]  # appended after the manifest was written
    if len(data) != size or hashlib.sha256(data).hexdigest() != sha:
        return None, f"sha256/size mismatch (got {len(data)} bytes, manifest says {size})"
    return data, ""
