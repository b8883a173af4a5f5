"""What the mirror knows about each source file: which files there are (``scan``), and the
size and sha256 of the copy the target holds (``Copied``), worked out cheaply.

Journal segments (``segment_*.jsonl``) are append-only: their sha256 is extended with the new
bytes only, and they are copied up to their last complete line. A log (``*.log``, e.g.
``executive.log``) grows without end and is only watched, never resumed from: it is copied
whole while it is at most ``LOG_TAIL_BYTES``, and beyond that the copy holds its last
``LOG_TAIL_BYTES`` from a line start (so each tick copies one small whole file, as Drive likes).
Everything here reads local files; nothing writes to the target.

A source is a folder (its files are ``<name>/<path>``) or a single file (named ``<name>``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvagents.durability.journal_files import SEGMENT_RE
from cvagents.durability.mirror_target import STAGE_SUFFIX, TMP_SUFFIX, pread_chunks

LOG_TAIL_BYTES = 64 * 1024  # the most of a log the mirror holds: its end
_TAIL = 64  # bytes remembered before a hashed prefix, to notice a rewritten (non-appended) file

StatKey = tuple[int, int, int]  # a source's (st_size, st_mtime_ns, st_ino)


@dataclass
class Copied:
    """What the target holds for one source file, as of the last copy."""

    size: int  # bytes in the target copy (for a journal segment: up to its last complete line)
    sha256: str
    stat: StatKey  # the source's stat when it was copied
    hasher: Any = None  # journal segments: sha256 state after `size` bytes, to extend next time
    tail: bytes = b""  # journal segments: the bytes just before `size`, to check nothing was rewritten
    data: bytes | None = None  # a long log: the tail to put (not a prefix of the file); dropped once put


def stat_key(st: os.stat_result) -> StatKey:
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def skip_name(name: str) -> bool:
    """Temporary and hidden files: other writers' atomic-write temps, the journal lock, ours."""
    return (
        name.startswith((".", "~"))
        or name.endswith((".tmp", ".part", ".swp", TMP_SUFFIX, STAGE_SUFFIX))
        or ".tmp" in name
    )


def is_log(rel: str) -> bool:
    return rel.endswith(".log")


def local_path(sources: dict[str, Path], rel: str) -> Path:
    """The local file a mirrored ``rel`` is a copy of."""
    name, _, sub = rel.partition("/")
    return sources[name] / sub if sub else sources[name]


def log_tail(fd: int, size: int) -> bytes:
    """The end of a log: its last ``LOG_TAIL_BYTES`` (all of it if smaller), from a line start."""
    if size <= LOG_TAIL_BYTES:
        return b"".join(pread_chunks(fd, 0, size))
    data = b"".join(pread_chunks(fd, size - LOG_TAIL_BYTES, size))
    cut = data.find(b"\n")
    return data[cut + 1 :] if cut >= 0 else data


def is_segment(rel: str) -> bool:
    return SEGMENT_RE.match(rel.rpartition("/")[2]) is not None


def scan(sources: dict[str, Path]) -> tuple[dict[str, os.stat_result], set[str]]:
    """All mirrorable files: {"name/rel/path": stat}; and the names whose folder is missing."""
    out: dict[str, os.stat_result] = {}
    missing = set()
    for name, root in sources.items():
        if root.is_file():  # a single-file source (the run's log)
            out[name] = root.stat()
            continue
        if not root.is_dir():
            missing.add(name)  # keep what was mirrored: a missing folder is not a deletion
            continue
        stack = [(root, name)]
        while stack:
            d, prefix = stack.pop()
            try:
                it = os.scandir(d)
            except (FileNotFoundError, NotADirectoryError):
                continue
            with it:
                for e in it:
                    if skip_name(e.name):
                        continue
                    try:
                        if e.is_dir(follow_symlinks=False):
                            stack.append((Path(e.path), f"{prefix}/{e.name}"))
                        elif e.is_file():
                            out[f"{prefix}/{e.name}"] = e.stat()
                    except FileNotFoundError:
                        continue
    return out, missing


def newest_segments(rels: Iterable[str]) -> set[str]:
    """The newest journal segment of each folder: the only one that still grows."""
    newest: dict[str, tuple[int, str]] = {}
    for rel in rels:
        folder, _, name = rel.rpartition("/")
        m = SEGMENT_RE.match(name)
        if m and int(m.group(1)) > newest.get(folder, (-1, ""))[0]:
            newest[folder] = (int(m.group(1)), rel)
    return {rel for _, rel in newest.values()}


def describe(rel: str, fd: int, prev: Copied | None, scanned: os.stat_result | None) -> tuple[Copied, int | None]:
    """What a copy of ``rel`` (open as ``fd``) would hold now, and the size it grew from since
    ``prev`` (None: it must be copied whole).

    A journal segment is described only up to its size when the tick scanned it (``scanned``):
    every other file is copied later, so the mirror never holds a journal that is ahead of the
    files it describes (a restored run finds the world at least as far as its journal).
    """
    st = os.fstat(fd)
    if is_log(rel) and st.st_size > LOG_TAIL_BYTES:
        data = log_tail(fd, st.st_size)
        return Copied(len(data), hashlib.sha256(data).hexdigest(), stat_key(st), data=data), None
    if not is_segment(rel):
        hasher = hashlib.sha256()
        for chunk in pread_chunks(fd, 0, st.st_size):
            hasher.update(chunk)
        return Copied(st.st_size, hasher.hexdigest(), stat_key(st)), None
    if scanned is not None and scanned.st_ino == st.st_ino and scanned.st_size < st.st_size:
        st = scanned  # grew since the scan: the rest goes next tick (the stat key says so)
    # Append-only: hash only the new bytes, and copy up to the last complete line.
    grown_from = None
    hasher = hashlib.sha256()
    if (
        prev is not None
        and prev.hasher is not None
        and prev.stat[2] == st.st_ino
        and st.st_size >= prev.size
        and os.pread(fd, len(prev.tail), prev.size - len(prev.tail)) == prev.tail
    ):
        grown_from, hasher = prev.size, prev.hasher.copy()
    start = grown_from or 0
    new = b"".join(pread_chunks(fd, start, st.st_size))
    size = start + new.rfind(b"\n") + 1
    hasher.update(memoryview(new)[: size - start])
    tail = os.pread(fd, min(_TAIL, size), size - min(_TAIL, size))
    return Copied(size, hasher.copy().hexdigest(), stat_key(st), hasher, tail), grown_from


def adopt(rel: str, fd: int, st: os.stat_result, listed: dict[str, Any]) -> Copied | None:
    """The target's copy of ``rel`` as its manifest lists it (``listed``), if that copy is a
    prefix of our local bytes (open as ``fd``; a segment may have grown since) -- else None."""
    hasher = hashlib.sha256()
    for chunk in pread_chunks(fd, 0, listed["size"]):
        hasher.update(chunk)
    if hasher.hexdigest() != listed.get("sha256"):
        return None
    seg = is_segment(rel)
    if listed["size"] != st.st_size and not seg:
        return None
    n = min(_TAIL, listed["size"])
    tail = os.pread(fd, n, listed["size"] - n) if seg else b""
    # A segment that has grown since keeps a stat that differs, so its new lines get copied.
    key = stat_key(st) if listed["size"] == st.st_size else (-1, -1, st.st_ino)
    return Copied(listed["size"], listed["sha256"], key, hasher if seg else None, tail)
