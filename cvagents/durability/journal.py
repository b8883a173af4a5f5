"""The trajectory journal: an append-only, checksummed record of everything a session does.

A journal is a directory::

    segment_000001.jsonl   closed segments: never written again
    segment_000002.jsonl   the open (last) segment: appended to
    index.json             written by apply_retention(): archived segments and their seq ranges
    .lock                  flock held by the one writer (kill -9 releases it)

Each line is one record: the canonical JSON of ``{"seq","ts","kind","data"}`` (that key order,
compact separators, ``data`` keys sorted) with ``,"crc":"<crc32, 8 hex>"`` inserted before the
closing brace. The crc covers exactly the canonical bytes, so a reader verifies a line by
cutting the fixed-size ``,"crc":"…"`` member off again; no re-serialisation is needed.

Only the tail of the open segment can be torn by a crash (each record is one ``write``; closed
segments are fsynced before the next one is created), so ``open`` reads only that segment, cuts
a bad tail, and leaves the rest to ``records()``, which verifies every line as it streams.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import re
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

try:  # Linux / macOS; without it there is simply no single-writer guard.
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = ["Record", "JournalError", "Journal", "apply_retention", "prune_archives", "SEGMENT_RE", "INDEX_NAME"]

log = logging.getLogger(__name__)

SEGMENT_RE = re.compile(r"^segment_(\d{6,})\.jsonl$")
INDEX_NAME = "index.json"
LOCK_NAME = ".lock"
_CRC_HEAD = b',"crc":"'
_TRAILER_LEN = len(b',"crc":"00000000"}')  # 18
_dumps_utf8 = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_dumps_ascii = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode


@dataclass(frozen=True)
class Record:
    seq: int  # 1, 2, 3 ... contiguous across segments
    ts: str  # ISO-8601 UTC wall-clock time of the append
    kind: str  # "meeting_started", "agent_response", "action_started", "tool_call", ...
    data: dict  # JSON-serialisable payload


class JournalError(Exception):
    """The journal is corrupt (not merely a torn tail), or cannot be opened for writing."""

    def __init__(self, message: str, path: Path | str | None = None, line: int | None = None):
        self.path = Path(path) if path is not None else None
        self.line = line
        where = f"{path}:{line}: " if path is not None and line is not None else (f"{path}: " if path else "")
        super().__init__(where + message)


# --------------------------------------------------------------------------- encoding


def _encode(seq: int, ts: str, kind: str, data: dict) -> tuple[bytes, str]:
    """Return (line bytes, data JSON). Raises TypeError/ValueError before anything is written."""
    try:
        data_json = _dumps_utf8(data)
        body = (
            '{"seq":%d,"ts":%s,"kind":%s,"data":%s}' % (seq, _dumps_utf8(ts), _dumps_utf8(kind), data_json)
        ).encode()
    except UnicodeEncodeError:  # lone surrogates: fall back to \u escapes for this record
        data_json = _dumps_ascii(data)
        body = (
            '{"seq":%d,"ts":%s,"kind":%s,"data":%s}' % (seq, _dumps_ascii(ts), _dumps_ascii(kind), data_json)
        ).encode()
    return body[:-1] + b',"crc":"%08x"}\n' % zlib.crc32(body), data_json


def _check(line: bytes) -> bytes | None:
    """The verified canonical body of one line (without its newline), or None if torn/corrupt."""
    if len(line) <= _TRAILER_LEN or line[-_TRAILER_LEN:-10] != _CRC_HEAD or line[-2:] != b'"}':
        return None
    try:
        crc = int(line[-10:-2], 16)
    except ValueError:
        return None
    body = line[:-_TRAILER_LEN] + b"}"
    return body if zlib.crc32(body) == crc else None


def _seq_of(body: bytes) -> int | None:
    """Fast path: the seq from a verified canonical body, without a JSON parse."""
    end = body.find(b",", 7)
    if not body.startswith(b'{"seq":') or end < 0:
        return None
    try:
        return int(body[7:end])
    except ValueError:
        return None


def _verified_seq(line: bytes) -> int | None:
    """The seq of a line whose crc verifies, else None: _check + _seq_of without copies (hot path)."""
    if line[-_TRAILER_LEN:-10] != _CRC_HEAD or line[-2:] != b'"}' or line[:7] != b'{"seq":':
        return None
    try:
        if zlib.crc32(b"}", zlib.crc32(memoryview(line)[:-_TRAILER_LEN])) != int(line[-10:-2], 16):
            return None
        return int(line[7 : line.index(b",", 7)])
    except ValueError:
        return None


_loads = json.JSONDecoder().decode


def _as_record(obj: Any) -> Record | None:
    try:
        seq, ts, kind, data = obj["seq"], obj["ts"], obj["kind"], obj["data"]
    except (KeyError, TypeError):
        return None
    if type(seq) is not int or type(ts) is not str or type(kind) is not str or type(data) is not dict:
        return None
    return Record(seq, ts, kind, data)


def _parse(body: bytes) -> Record | None:
    try:
        return _as_record(_loads(body.decode("utf-8")))
    except ValueError:
        return None


def _parse_many(lines: list[bytes], idx: range | list[int], path: Path) -> list[Record]:
    """Decode the verified ``lines[i] for i in idx`` with one JSON parse ("crc" is ignored).

    One parse of a JSON array is several times faster than a parse per line.
    """
    sel = lines[idx.start : idx.stop] if isinstance(idx, range) else [lines[i] for i in idx]
    try:
        out = []
        for o in _loads((b"[" + b",".join(sel) + b"]").decode("utf-8")):
            seq, ts, kind, data = o["seq"], o["ts"], o["kind"], o["data"]
            if type(seq) is not int or type(ts) is not str or type(kind) is not str or type(data) is not dict:
                raise TypeError
            out.append(Record(seq, ts, kind, data))
        return out
    except (ValueError, KeyError, TypeError):
        for i, line in zip(idx, sel):  # find the culprit
            if _parse(line) is None:
                raise JournalError("record has a valid checksum but not the record shape", path, i + 1) from None
        raise


def _split(buf: bytes) -> list[bytes]:
    """Lines without their newlines; a final line without one is kept (it may be complete)."""
    lines = buf.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def _kind_patterns(kinds: Iterable[str]) -> Iterator[bytes]:
    """Byte patterns one of which a body with that kind must contain (a cheap pre-filter)."""
    for k in kinds:
        yield b'"kind":' + _dumps_utf8(k).encode() + b","
        yield b'"kind":' + _dumps_ascii(k).encode() + b","


def _decode_line(line: bytes) -> Record | None:
    body = _check(line)
    return _parse(body) if body is not None else None


# --------------------------------------------------------------------------- small file helpers


def _list_segments(directory: Path) -> list[Path]:
    try:
        names = [n for n in os.listdir(directory) if SEGMENT_RE.match(n)]
    except FileNotFoundError:
        return []
    return [directory / n for n in sorted(names, key=lambda n: int(SEGMENT_RE.match(n).group(1)))]


def _segment_name(number: int) -> str:
    return f"segment_{number:06d}.jsonl"


def _fsync_dir(directory: Path) -> None:
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


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _load_index(directory: Path) -> dict:
    try:
        raw = (directory / INDEX_NAME).read_bytes()
    except FileNotFoundError:
        return {"version": 1, "segments": []}
    try:
        index = json.loads(raw)
        assert isinstance(index.get("segments"), list)
        return index
    except (ValueError, AssertionError, AttributeError) as exc:
        raise JournalError(f"unreadable index: {exc}", directory / INDEX_NAME) from None


def _tail_record(path: Path) -> Record | None:
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
                rec = _decode_line(buf[prev_nl + 1 : -1])
                if rec is None:
                    raise JournalError("last record of closed segment is corrupt", path)
                return rec
            chunk *= 4


def _first_seq_of(path: Path) -> int | None:
    with open(path, "rb") as f:
        line = f.readline()
    if not line:
        return None
    body = _check(line[:-1] if line.endswith(b"\n") else line)
    return _seq_of(body) if body is not None else None


# --------------------------------------------------------------------------- the journal


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

    # ---- opening

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike,
        *,
        segment_max_bytes: int = 1_000_000,
        fsync: bool = True,
        read_only: bool = False,
    ) -> Journal:
        """Create or open a journal, cutting a torn or corrupt tail off the open segment.

        ``read_only`` opens without locking, creating or cutting anything (for monitors reading a
        live or mirrored journal); a torn tail is then ignored instead of cut.
        """
        if segment_max_bytes <= 0:
            raise ValueError("segment_max_bytes must be positive")
        directory = Path(directory)
        j = cls(directory, segment_max_bytes, fsync, read_only)
        try:
            j._open()
        except BaseException:
            j.close()
            raise
        return j

    def _open(self) -> None:
        d = self.directory
        if not self.read_only:
            d.mkdir(parents=True, exist_ok=True)
            self._take_lock()
        segs = _list_segments(d)
        if not segs:
            if self.read_only:
                self._last_seq = self._archived_last_seq()
                return
            segs = [d / _segment_name(1)]
            self._create_segment(segs[0])
        last = segs[-1]
        self._seg_no = int(SEGMENT_RE.match(last.name).group(1))
        buf = last.read_bytes()
        good, last_rec, count = self._scan_open_segment(last, buf)
        cut = len(buf) - good
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
        # Where does the open segment start? From the previous segment's tail (cheap) or the index.
        prev_last = 0
        if len(segs) > 1:
            prev = _tail_record(segs[-2])
            prev_last = prev.seq if prev else 0
        else:
            prev_last = self._archived_last_seq()
        if last_rec is not None:
            first = last_rec.seq - count + 1
            if prev_last and first != prev_last + 1:
                raise JournalError(f"seq gap: segment starts at {first}, previous ends at {prev_last}", last, 1)
            self._last, self._last_seq = last_rec, last_rec.seq
        else:
            self._last_seq = prev_last
            self._last = prev if len(segs) > 1 else None
        self._size = good
        if not self.read_only:
            self._fd = os.open(last, os.O_WRONLY | os.O_APPEND)

    def _scan_open_segment(self, path: Path, buf: bytes) -> tuple[int, Record | None, int]:
        """(length of the valid prefix, last record, record count); raise on mid-file corruption."""
        good, last, count, bad_line, pos = 0, None, 0, None, 0
        for n, line in enumerate(_split(buf), 1):
            end, pos = min(pos + len(line) + 1, len(buf)), pos + len(line) + 1
            rec = _decode_line(line)
            if bad_line is None:
                if rec is not None and (last is None or rec.seq == last.seq + 1):
                    good, last, count = end, rec, count + 1
                    continue
                if rec is not None:  # a valid record out of sequence is corruption, not a tear
                    raise JournalError(f"seq {rec.seq} follows {last.seq}", path, n)
                bad_line = n
            elif rec is not None:
                raise JournalError("corrupt record (bad JSON or checksum) before valid ones", path, bad_line)
        return good, last, count

    def _take_lock(self) -> None:
        if fcntl is None:  # pragma: no cover
            return
        fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise JournalError(
                "journal is already open for writing (another process, or an unclosed Journal in this one); "
                "use read_only=True to read it",
                self.directory,
            ) from None
        self._lock_fd = fd

    def _create_segment(self, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        os.close(fd)
        _fsync_dir(self.directory)

    def _archived_last_seq(self) -> int:
        index = _load_index(self.directory)
        return max((s["last_seq"] for s in index["segments"]), default=index.get("pruned_through_seq", 0))

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
            line, data_json = _encode(seq, ts, kind, data)
            if self._size >= self.segment_max_bytes:
                try:
                    self._rotate()
                except BaseException as exc:
                    self._broken = exc
                    raise
            self._write(line)
            rec = Record(seq, ts, kind, json.loads(data_json))
            self._last, self._last_seq = rec, seq
            self._last_by_kind[kind] = rec
            return rec

    def _write(self, line: bytes) -> None:
        fd, start = self._fd, self._size
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
        os.fsync(self._fd)  # a closed segment is durable before its successor exists
        os.close(self._fd)
        self._fd = None
        self._seg_no += 1
        path = self.directory / _segment_name(self._seg_no)
        self._create_segment(path)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self._size = 0

    # ---- reading

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def segments(self) -> list[Path]:
        """Live segment files, oldest first; the last one is the open segment."""
        return _list_segments(self.directory)

    def archived_segments(self) -> list[dict]:
        """Index entries of segments moved away by apply_retention(), oldest first."""
        return sorted(_load_index(self.directory)["segments"], key=lambda s: s["first_seq"])

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
        sources: list[tuple[str, Any]] = []
        if include_archived:
            live = {p.name for p in segs}
            for entry in self.archived_segments():
                if entry["name"] not in live and entry["last_seq"] > since_seq:
                    sources.append(("archive", entry))
        # Skip live segments that end before since_seq: a segment ends where the next one starts.
        start = 0
        if since_seq > 0:
            for i in range(len(segs) - 1, 0, -1):
                first = self._first_seq(segs[i])
                if first is not None and first <= since_seq + 1:
                    start = i
                    break
        for i, p in enumerate(segs[start:], start):
            sources.append(("live", (p, open_limit if i == len(segs) - 1 else None, i == len(segs) - 1)))
        pats = None if kinds is None else tuple(_kind_patterns(kinds))
        expected = None
        for what, src in sources:
            path, lines, seqs = self._segment_items(what, src)
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
                for rec in _parse_many(lines, idx, path):
                    if kinds is None or rec.kind in kinds:
                        yield rec

    def _first_seq(self, path: Path) -> int | None:
        if path not in self._first_seq_cache:
            try:
                first = _first_seq_of(path)
            except FileNotFoundError:
                return None
            if first is None:
                return None  # empty open segment: ask again later
            self._first_seq_cache[path] = first
        return self._first_seq_cache[path]

    def _segment_items(self, what: str, src: Any) -> tuple[Path, list[bytes], list[int]]:
        """(path, verified lines, their seqs) for one live or archived segment."""
        if what == "live":
            path, limit, is_last = src
            try:
                with open(path, "rb") as f:
                    buf = f.read() if limit is None else f.read(limit)
            except FileNotFoundError:  # archived by apply_retention() while we were reading
                entry = next((e for e in self.archived_segments() if e["name"] == path.name), None)
                if entry is None:
                    raise JournalError("segment vanished and is not in the index", path) from None
                return self._segment_items("archive", entry)
            tolerate_tail = is_last and self.read_only
        else:
            path, buf = self._read_archive(src)
            tolerate_tail = False
        lines = _split(buf)
        seqs = [_verified_seq(line) for line in lines]
        if None in seqs:
            bad = seqs.index(None)
            if not (tolerate_tail and not any(_check(rest) for rest in lines[bad + 1 :])):
                raise JournalError("corrupt record (bad JSON, checksum or torn line)", path, bad + 1)
            del lines[bad:], seqs[bad:]  # a live writer's torn or in-flight tail
        return path, lines, seqs

    def _read_archive(self, entry: dict) -> tuple[Path, bytes]:
        path = (self.directory / entry["archive"]).resolve()
        try:
            buf = gzip.decompress(path.read_bytes())
        except (OSError, EOFError, zlib.error) as exc:
            raise JournalError(f"cannot read archived segment {entry['name']}: {exc}", path) from None
        if hashlib.sha256(buf).hexdigest() != entry["sha256"]:
            raise JournalError(f"archived segment {entry['name']} does not match its sha256 in the index", path)
        return path, buf

    def last(self, kind: str | None = None) -> Record | None:
        """The newest record (of ``kind``), searching newest segments first."""
        with self._lock:
            if kind is None and (self._last is not None or self._last_seq == 0):
                return self._last
            if kind is not None and kind in self._last_by_kind:
                return self._last_by_kind[kind]
            segs = self.segments()
            open_limit = self._size if not self.read_only else None
        sources = [
            ("live", (p, open_limit if i == len(segs) - 1 else None, i == len(segs) - 1)) for i, p in enumerate(segs)
        ]
        live = {p.name for p in segs}
        sources = [("archive", e) for e in self.archived_segments() if e["name"] not in live] + sources
        pats = () if kind is None else tuple(_kind_patterns([kind]))
        found = None
        for what, src in reversed(sources):
            path, lines, _seqs = self._segment_items(what, src)
            for n in range(len(lines) - 1, -1, -1):
                if kind is None or any(p in lines[n] for p in pats):
                    rec = _parse(lines[n])
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


# --------------------------------------------------------------------------- retention


def apply_retention(journal_dir: str | os.PathLike, archive_dir: str | os.PathLike, keep_segments: int) -> list[dict]:
    """Gzip closed segments older than the newest ``keep_segments`` into ``archive_dir``.

    Each archived segment is verified, written as ``<name>.gz`` (fsynced), entered in the
    journal's ``index.json`` (first/last seq, count, sha256 of the uncompressed bytes, archive
    path relative to the journal dir) and only then deleted. Re-running after a crash at any
    point is safe. The open segment is never touched. Returns the new index entries.
    """
    if keep_segments < 0:
        raise ValueError("keep_segments must be >= 0")
    jd, ad = Path(journal_dir), Path(archive_dir)
    closed = _list_segments(jd)[:-1]
    victims = closed[: max(0, len(closed) - keep_segments)]
    if not victims:
        return []
    ad.mkdir(parents=True, exist_ok=True)
    index = _load_index(jd)
    done = []
    for seg in victims:
        buf = seg.read_bytes()
        first = last = None
        count = 0
        for n, line in enumerate(_split(buf), 1):
            body = _check(line)
            seq = _seq_of(body) if body is not None else None
            if seq is None or (last is not None and seq != last + 1):
                raise JournalError("corrupt record; segment not archived", seg, n)
            first = seq if first is None else first
            last, count = seq, count + 1
        if count == 0:
            raise JournalError("empty closed segment; not archived", seg)
        gz = ad / (seg.name + ".gz")
        _atomic_write(gz, gzip.compress(buf, compresslevel=6, mtime=0))
        entry = {
            "name": seg.name,
            "first_seq": first,
            "last_seq": last,
            "count": count,
            "sha256": hashlib.sha256(buf).hexdigest(),
            "bytes": len(buf),
            "archive": os.path.relpath(gz, jd),
        }
        index["segments"] = [e for e in index["segments"] if e["name"] != seg.name] + [entry]
        index["segments"].sort(key=lambda e: e["first_seq"])
        _atomic_write(jd / INDEX_NAME, json.dumps(index, indent=1).encode())
        seg.unlink()
        _fsync_dir(jd)
        done.append(entry)
    return done


def prune_archives(journal_dir: str | os.PathLike, keep_archived: int) -> list[dict]:
    """Delete archived segments beyond the newest ``keep_archived`` (the retention rule's bound
    on disk use). The index drops them first (and remembers ``pruned_through_seq``), then the
    files go, so a crash in between leaves only an unlisted file. Returns the dropped entries."""
    if keep_archived < 0:
        raise ValueError("keep_archived must be >= 0")
    jd = Path(journal_dir)
    index = _load_index(jd)
    entries = sorted(index["segments"], key=lambda e: e["first_seq"])
    victims = entries[: max(0, len(entries) - keep_archived)]
    if not victims:
        return []
    index["segments"] = entries[len(victims) :]
    index["pruned_through_seq"] = max(index.get("pruned_through_seq", 0), victims[-1]["last_seq"])
    _atomic_write(jd / INDEX_NAME, json.dumps(index, indent=1).encode())
    for e in victims:
        try:
            (jd / e["archive"]).unlink()
        except FileNotFoundError:
            pass
    return victims
