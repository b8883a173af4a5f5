"""The trajectory journal: an append-only, checksummed record of everything a session does.

A journal is a folder of segments (``journal_files``), each a file of one checksummed record
per line (``journal_lines``); old closed segments are archived by ``retention``.

Only the tail of the open segment can be torn by a crash (each record is one ``write``; closed
segments are fsynced before the next one is created), so ``open`` cuts a bad tail of that
segment silently. Damage anywhere else is not a crash: a writer's ``open`` checks every closed
segment against the digest recorded when it closed (``integrity``) and refuses a damaged
journal (``JournalDamaged``) unless told to ``repair`` it. ``records()`` verifies every line as
it streams.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cvagents.durability import integrity
from cvagents.durability.integrity import JournalDamaged
from cvagents.durability.journal_files import (
    append_digests,
    archived_last_seq,
    create_segment,
    first_seq_of,
    list_segments,
    load_index,
    segment_name,
    segment_number,
    tail_record,
    take_lock,
)
from cvagents.durability.journal_lines import (
    JournalError,
    Record,
    encode_line,
    kind_patterns,
    parse,
    parse_many,
    scan_valid_prefix,
    split_lines,
    verified_body,
    verified_seq,
)
from cvagents.durability.retention import read_archive

__all__ = ["Journal", "JournalDamaged", "JournalError", "Record"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Live:
    """A live segment to read: ``limit`` caps the open segment at what this writer wrote."""

    path: Path
    limit: int | None
    is_last: bool


_Source = _Live | dict  # a live segment, or an archived one's index entry


class Journal:
    """One writer per directory (enforced with flock); any number of ``read_only`` readers.

    ``append`` is thread-safe. Records returned by ``append`` equal what ``records()`` yields
    later (the data has been through JSON once, so tuples come back as lists).
    """

    def __init__(self, directory: Path, segment_max_bytes: int, fsync: bool, read_only: bool):
        self.directory = directory
        self.segment_max_bytes = segment_max_bytes
        self.fsync = fsync
        self.read_only = read_only
        self.recovered_tail = 0  # bytes cut from the open segment on open (read_only: bytes ignored)
        self._lock = threading.RLock()
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._seg_no = 1
        self._size = 0
        self._last: Record | None = None
        self._last_seq = 0
        self._last_by_kind: dict[str, Record | None] = {}
        self._first_seq_cache: dict[Path, int | None] = {}
        self._broken: BaseException | None = None
        self._closed = False
        self._hasher = hashlib.sha256()  # of the open segment's bytes: its digest when it closes
        self._open_first: int | None = None  # the open segment's first seq and record count
        self._open_count = 0
        self.repairs: list[dict] = []  # what ``repair`` cut off on open (also journaled as journal_repaired)

    # ---- opening

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike,
        *,
        segment_max_bytes: int = 1_000_000,
        fsync: bool = True,
        read_only: bool = False,
        repair: bool = False,
    ) -> Journal:
        """Create or open a journal, cutting a torn or corrupt tail off the open segment.

        A writer checks the closed segments (``integrity.check``): a damaged journal raises
        ``JournalDamaged`` naming the segment and line, unless ``repair``, which cuts it at the
        damage (``integrity.cut``) and journals ``journal_repaired`` with what was lost.
        ``read_only`` opens without locking, checking, creating or cutting anything (for monitors
        reading a live or mirrored journal); a torn tail is then ignored instead of cut.
        """
        if segment_max_bytes <= 0:
            raise ValueError("segment_max_bytes must be positive")
        directory = Path(directory)
        j = cls(directory, segment_max_bytes, fsync, read_only)
        try:
            j._open(repair)
        except BaseException:
            j.close()
            raise
        return j

    def _open(self, repair: bool) -> None:
        d = self.directory
        if not self.read_only:
            d.mkdir(parents=True, exist_ok=True)
            self._lock_fd = take_lock(d)
            self.repairs = integrity.prepare(d, repair=repair, fsync=self.fsync)  # or JournalDamaged
        segs = list_segments(d)
        if not segs:
            if self.read_only:
                self._last_seq = archived_last_seq(self.directory)
                return
            segs = [d / segment_name(1)]
            create_segment(segs[0])
        last = segs[-1]
        self._seg_no = segment_number(last)
        buf = last.read_bytes()
        good, last_rec, count = scan_valid_prefix(last, buf)
        cut = len(buf) - good
        content = buf[:good]
        if cut:
            self.recovered_tail = cut
            if not self.read_only:
                log.warning("journal %s: cut %d bytes of torn/corrupt tail", last, cut)
                with open(last, "r+b") as f:
                    f.truncate(good)
                    f.flush()
                    os.fsync(f.fileno())
        elif buf and not buf.endswith(b"\n") and not self.read_only:
            # The last record verified but its newline never reached the disk: restore it.
            with open(last, "ab") as f:
                f.write(b"\n")
                f.flush()
                os.fsync(f.fileno())
            good += 1
            content = buf + b"\n"
        # Where does the open segment start? From the previous segment's tail (cheap) or the index.
        prev = tail_record(segs[-2]) if len(segs) > 1 else None
        prev_last = (prev.seq if prev else 0) if len(segs) > 1 else archived_last_seq(self.directory)
        if last_rec is not None:
            first = last_rec.seq - count + 1
            if prev_last and first != prev_last + 1:
                raise JournalError(f"seq gap: segment starts at {first}, previous ends at {prev_last}", last, 1)
            self._last, self._last_seq = last_rec, last_rec.seq
        else:
            self._last_seq = prev_last
            self._last = prev
        self._size = good
        if last_rec is not None:
            self._open_first, self._open_count = last_rec.seq - count + 1, count
        if not self.read_only:
            self._hasher = hashlib.sha256(content)
            self._fd = os.open(last, os.O_WRONLY | os.O_APPEND)
            for report in self.repairs:
                self.append("journal_repaired", report)

    # ---- writing

    def append(self, kind: str, data: dict) -> Record:
        """Append one record; it is on disk (write, and fsync if enabled) when this returns."""
        if not isinstance(kind, str) or not kind:
            raise ValueError("kind must be a non-empty string")
        if not isinstance(data, dict):
            raise TypeError("data must be a dict")
        with self._lock:
            if self.read_only:
                raise JournalError("journal was opened read_only", self.directory)
            if self._closed:
                raise ValueError("journal is closed")
            if self._broken is not None:
                raise JournalError(f"journal unusable after a failed write: {self._broken!r}", self.directory)
            seq = self._last_seq + 1
            ts = datetime.now(UTC).isoformat(timespec="microseconds")
            line, data_json = encode_line(seq, ts, kind, data)
            if self._size >= self.segment_max_bytes:
                try:
                    self._rotate()
                except BaseException as exc:
                    self._broken = exc
                    raise
            self._write(line)
            self._hasher.update(line)
            if not self._open_count:
                self._open_first = seq
            self._open_count += 1
            rec = Record(seq, ts, kind, json.loads(data_json))
            self._last, self._last_seq = rec, seq
            self._last_by_kind[kind] = rec
            return rec

    def _writer_fd(self) -> int:
        if self._fd is None:  # read_only or closed: append() refuses before it gets here
            raise JournalError("journal is not open for writing", self.directory)
        return self._fd

    def _write(self, line: bytes) -> None:
        fd, start = self._writer_fd(), self._size
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
            if self.fsync:
                os.fsync(fd)
        except BaseException as exc:
            # Never leave a partial line that later appends would bury mid-file. After a failed
            # fsync the page cache can no longer be trusted, so the journal also stops taking
            # appends: the process should restart, and open() will cut whatever is left.
            try:
                os.ftruncate(fd, start)
            except OSError:
                self._broken = exc
            if self.fsync and not isinstance(exc, (KeyboardInterrupt, SystemExit)):
                self._broken = exc
            raise
        self._size = start + len(line)

    def _rotate(self) -> None:
        """Close the open segment and start the next; then record the closed one's digest (a
        crash in between leaves a closed segment without one: the next open verifies its
        records and records it)."""
        fd = self._writer_fd()
        os.fsync(fd)  # a closed segment is durable before its successor exists
        os.close(fd)
        self._fd = None
        closed = segment_name(self._seg_no)
        entry = integrity.closed_entry(
            self._open_first or self._last_seq, self._last_seq, self._open_count, self._size, self._hasher.hexdigest()
        )
        self._seg_no += 1
        path = self.directory / segment_name(self._seg_no)
        create_segment(path)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self._size, self._hasher, self._open_first, self._open_count = 0, hashlib.sha256(), None, 0
        append_digests(self.directory, {closed: entry}, fsync=self.fsync)

    # ---- reading

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def segments(self) -> list[Path]:
        """Live segment files, oldest first; the last one is the open segment."""
        return list_segments(self.directory)

    def archived_segments(self) -> list[dict]:
        """Index entries of segments moved away by apply_retention(), oldest first."""
        return sorted(load_index(self.directory)["segments"], key=lambda s: s["first_seq"])

    def records(
        self, kinds: str | Iterable[str] | None = None, since_seq: int = 0, *, include_archived: bool = False
    ) -> Iterator[Record]:
        """Records with seq > since_seq, in order, verified as they stream (JournalError if corrupt).

        Without ``include_archived`` the stream starts at the oldest live segment.
        """
        if isinstance(kinds, str):
            kinds = {kinds}
        elif kinds is not None:
            kinds = set(kinds)
        with self._lock:
            segs = self.segments()
            open_limit = self._size if not self.read_only else None
        sources: list[_Source] = []
        if include_archived:
            live = {p.name for p in segs}
            for entry in self.archived_segments():
                if entry["name"] not in live and entry["last_seq"] > since_seq:
                    sources.append(entry)
        # Skip live segments that end before since_seq: a segment ends where the next one starts.
        start = 0
        if since_seq > 0:
            for i in range(len(segs) - 1, 0, -1):
                first = self._first_seq(segs[i])
                if first is not None and first <= since_seq + 1:
                    start = i
                    break
        sources += self._live_sources(segs, open_limit)[start:]
        pats = None if kinds is None else tuple(kind_patterns(kinds))
        expected = None
        for src in sources:
            path, lines, seqs = self._segment_items(src)
            if not seqs:
                continue
            first = expected if expected is not None else seqs[0]
            if seqs != list(range(first, first + len(seqs))):
                n = next(i for i, q in enumerate(seqs) if q != first + i)
                raise JournalError(f"seq {seqs[n]} where {first + n} was expected", path, n + 1)
            expected = seqs[-1] + 1
            idx: range | list[int] = range(max(0, since_seq - first + 1), len(lines))
            if pats is not None:
                idx = [i for i in idx if any(p in lines[i] for p in pats)]
            if len(idx):
                for rec in parse_many(lines, idx, path):
                    if kinds is None or rec.kind in kinds:
                        yield rec

    def _first_seq(self, path: Path) -> int | None:
        if path not in self._first_seq_cache:
            try:
                first = first_seq_of(path)
            except FileNotFoundError:
                return None
            if first is None:
                return None  # empty open segment: ask again later
            self._first_seq_cache[path] = first
        return self._first_seq_cache[path]

    @staticmethod
    def _live_sources(segs: list[Path], open_limit: int | None) -> list[_Source]:
        return [_Live(p, open_limit if i == len(segs) - 1 else None, i == len(segs) - 1) for i, p in enumerate(segs)]

    def _segment_items(self, src: _Source) -> tuple[Path, list[bytes], list[int]]:
        """(path, verified lines, their seqs) for one live or archived segment."""
        if isinstance(src, _Live):
            path = src.path
            try:
                with open(path, "rb") as f:
                    buf = f.read() if src.limit is None else f.read(src.limit)
            except FileNotFoundError:  # archived by apply_retention() while we were reading
                entry = next((e for e in self.archived_segments() if e["name"] == path.name), None)
                if entry is None:
                    raise JournalError("segment vanished and is not in the index", path) from None
                return self._segment_items(entry)
            tolerate_tail = src.is_last and self.read_only
        else:
            path, buf = read_archive(self.directory, src)
            tolerate_tail = False
        lines = split_lines(buf)
        found = [verified_seq(line) for line in lines]
        if None in found:
            bad = found.index(None)
            if not (tolerate_tail and not any(verified_body(rest) for rest in lines[bad + 1 :])):
                raise JournalError("corrupt record (bad JSON, checksum or torn line)", path, bad + 1)
            del lines[bad:], found[bad:]  # a live writer's torn or in-flight tail
        return path, lines, [q for q in found if q is not None]

    def last(self, kind: str | None = None) -> Record | None:
        """The newest record (of ``kind``), searching newest segments first."""
        with self._lock:
            if kind is None and (self._last is not None or self._last_seq == 0):
                return self._last
            if kind is not None and kind in self._last_by_kind:
                return self._last_by_kind[kind]
            segs = self.segments()
            open_limit = self._size if not self.read_only else None
        live = {p.name for p in segs}
        sources: list[_Source] = [e for e in self.archived_segments() if e["name"] not in live]
        sources += self._live_sources(segs, open_limit)
        pats = () if kind is None else tuple(kind_patterns([kind]))
        found = None
        for src in reversed(sources):
            path, lines, _seqs = self._segment_items(src)
            for n in range(len(lines) - 1, -1, -1):
                if kind is None or any(p in lines[n] for p in pats):
                    rec = parse(lines[n])
                    if rec is None:
                        raise JournalError("record has a valid checksum but not the record shape", path, n + 1)
                    if kind is None or rec.kind == kind:
                        found = rec
                        break
            if found is not None:
                break
        with self._lock:  # an append may have raced us; it wins
            if kind is None:
                if self._last is None:
                    self._last = found
                return self._last
            return self._last_by_kind.setdefault(kind, found)

    # ---- closing

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._fd is not None:
                try:
                    os.fsync(self._fd)
                except OSError:
                    pass
                os.close(self._fd)
                self._fd = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({str(self.directory)!r}, last_seq={self._last_seq})"
