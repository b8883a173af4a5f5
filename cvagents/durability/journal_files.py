"""The journal's folder on disk::

    segment_000001.jsonl   closed segments: never written again
    segment_000002.jsonl   the open (last) segment: appended to
    digests.jsonl          one line per closed segment, appended when it closes: its size,
                           sha256 and seq range (append-only, so a mirror's newer copy of it
                           still holds the listed prefix; the last line for a name wins)
    index.json             written by retention: archived segments and their seq ranges
    .lock                  flock held by the one writer (kill -9 releases it)

What is read here is read cheaply: a closed segment's last record from its end, a segment's
first seq from its first line.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

try:  # Linux / macOS; without it there is simply no single-writer guard.
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

from cvagents.durability.atomic import atomic_write_bytes, fsync_dir
from cvagents.durability.journal_lines import JournalError, Record, decode_line, seq_of, verified_body

SEGMENT_RE = re.compile(r"^segment_(\d{6,})\.jsonl$")
INDEX_NAME = "index.json"
DIGESTS_NAME = "digests.jsonl"
LOCK_NAME = ".lock"


def segment_number(path: Path) -> int:
    """The number in a segment's name (``segment_000042.jsonl`` -> 42)."""
    m = SEGMENT_RE.match(path.name)
    if m is None:
        raise ValueError(f"not a journal segment: {path.name}")
    return int(m.group(1))


def segment_name(number: int) -> str:
    return f"segment_{number:06d}.jsonl"


def list_segments(directory: Path) -> list[Path]:
    """The live segments in ``directory``, oldest first (none if it does not exist)."""
    try:
        paths = [directory / n for n in os.listdir(directory) if SEGMENT_RE.match(n)]
    except FileNotFoundError:
        return []
    return sorted(paths, key=segment_number)


def create_segment(path: Path) -> None:
    """A new, empty segment, durable in its folder before anything is appended to it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
    os.close(fd)
    fsync_dir(path.parent)


def take_lock(directory: Path) -> int | None:
    """Hold the journal's single-writer lock; the fd to close to let go (None: no flock here)."""
    if fcntl is None:  # pragma: no cover
        return None
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise JournalError(
            "journal is already open for writing (another process, or an unclosed Journal in this one); "
            "use read_only=True to read it",
            directory,
        ) from None
    return fd


def load_index(directory: Path) -> dict[str, Any]:
    """The journal's index of archived segments (an empty one when there is none)."""
    try:
        raw = (directory / INDEX_NAME).read_bytes()
    except FileNotFoundError:
        return {"version": 1, "segments": []}
    try:
        index = json.loads(raw)
        if not isinstance(index.get("segments"), list):
            raise ValueError("no list of segments")
        return index
    except (ValueError, AttributeError) as exc:
        raise JournalError(f"unreadable: {exc}", directory / INDEX_NAME) from None


def write_index(directory: Path, index: dict[str, Any], *, fsync: bool = True) -> None:
    atomic_write_bytes(directory / INDEX_NAME, json.dumps(index, indent=1).encode(), fsync=fsync)


def load_digests(directory: Path) -> dict[str, dict[str, Any]]:
    """The digest of each closed segment by name, as recorded when it closed (a line that does not
    parse, e.g. torn by a crash, is no digest: that segment's records are verified instead)."""
    try:
        raw = (directory / DIGESTS_NAME).read_bytes()
    except FileNotFoundError:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for line in raw.splitlines():
        try:
            entry = json.loads(line)
            out[entry.pop("name")] = entry
        except (ValueError, TypeError, AttributeError, KeyError):
            continue
    return out


def append_digests(directory: Path, digests: dict[str, dict[str, Any]], *, fsync: bool = True) -> None:
    """Record closed segments' digests (one ``write``; a torn earlier line is ended first)."""
    path = directory / DIGESTS_NAME
    lines = b"".join(json.dumps({"name": n, **e}, separators=(",", ":")).encode() + b"\n" for n, e in digests.items())
    with open(path, "ab+") as f:
        if f.tell() and (f.seek(-1, os.SEEK_END), f.read(1))[1] != b"\n":
            lines = b"\n" + lines
        f.write(lines)
        f.flush()
        if fsync:
            os.fsync(f.fileno())


def write_digests(directory: Path, digests: dict[str, dict[str, Any]], *, fsync: bool = True) -> None:
    """Replace the digests (a repair, or dropping entries of segments that are not closed)."""
    data = b"".join(json.dumps({"name": n, **e}, separators=(",", ":")).encode() + b"\n" for n, e in digests.items())
    atomic_write_bytes(directory / DIGESTS_NAME, data, fsync=fsync)


def archived_last_seq(directory: Path) -> int:
    """The last seq the archive holds (or once held, before pruning); 0 for none."""
    index = load_index(directory)
    return max((s["last_seq"] for s in index["segments"]), default=index.get("pruned_through_seq", 0))


def tail_record(path: Path) -> Record | None:
    """The last record of a closed segment, reading only its end."""
    size = path.stat().st_size
    if size == 0:
        return None
    chunk = 1 << 16
    with open(path, "rb") as f:
        while True:
            start = max(0, size - chunk)
            f.seek(start)
            buf = f.read(size - start)
            if not buf.endswith(b"\n"):
                raise JournalError("closed segment does not end with a complete record", path)
            prev_nl = buf.rfind(b"\n", 0, len(buf) - 1)
            if prev_nl >= 0 or start == 0:
                rec = decode_line(buf[prev_nl + 1 : -1])
                if rec is None:
                    raise JournalError("last record of closed segment is corrupt", path)
                return rec
            chunk *= 4


def first_seq_of(path: Path) -> int | None:
    """The seq of a segment's first record; None if it is empty or its first line does not verify."""
    with open(path, "rb") as f:
        line = f.readline()
    if not line:
        return None
    body = verified_body(line[:-1] if line.endswith(b"\n") else line)
    return seq_of(body) if body is not None else None
