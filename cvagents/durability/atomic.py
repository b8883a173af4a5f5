"""Atomic replacement of files that other processes read (handoff, metrics, reports).

Write a temporary file in the same folder, flush, fsync, ``os.replace``, fsync the folder: a
reader sees the old file or the new one, never half of either, even across a kill -9.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from cvagents.durability.crashpoints import crashpoint


def atomic_write_bytes(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """``fsync=False``: still atomic for readers, not durable across a power cut (benchmarks, tests)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:  # name the file being written, not the temp name nobody knows
        raise type(e)(e.errno, e.strerror, str(path)) from None
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide reports and models from other readers
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        crashpoint(f"atomic:{path.name}")  # crash tests: the temp file is written, not yet in place
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if fsync:
        fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename or create in ``directory`` durable. A platform or filesystem that cannot
    fsync a folder (no directory fds; some FUSE mounts) is skipped: there is nothing more to do."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def read_json(path: Path, default: Any = None) -> Any:
    """Read a JSON file; ``default`` when it does not exist."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
