"""One journal record per line: how a record is written as bytes, verified and read back.

A line is the canonical JSON of ``{"seq","ts","kind","data"}`` (that key order, compact
separators, ``data`` keys sorted) with ``,"crc":"<crc32, 8 hex>"`` inserted before the closing
brace. The crc covers exactly the canonical bytes, so a reader verifies a line by cutting the
fixed-size ``,"crc":"…"`` member off again; no re-serialisation is needed.

Pure functions of bytes: nothing here opens a file.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvagents.errors import CVAgentsError

_CRC_HEAD = b',"crc":"'
_TRAILER_LEN = len(b',"crc":"00000000"}')  # 18
_dumps_utf8 = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_dumps_ascii = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode
_loads = json.JSONDecoder().decode


@dataclass(frozen=True)
class Record:
    seq: int  # 1, 2, 3 ... contiguous across segments
    ts: str  # ISO-8601 UTC wall-clock time of the append
    kind: str  # "meeting_started", "agent_response", "action_started", "tool_call", ...
    data: dict  # JSON-serialisable payload


class JournalError(CVAgentsError):
    """The journal is corrupt (not merely a torn tail), or cannot be opened for writing."""

    def __init__(self, message: str, path: Path | str | None = None, line: int | None = None):
        self.path = Path(path) if path is not None else None
        self.line = line
        self.reason = message  # without the path and line
        where = f"{path}:{line}: " if path is not None and line is not None else (f"{path}: " if path else "")
        super().__init__(where + message)


def encode_line(seq: int, ts: str, kind: str, data: dict) -> tuple[bytes, str]:
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


def verified_body(line: bytes) -> bytes | None:
    """The verified canonical body of one line (without its newline), or None if torn/corrupt."""
    if len(line) <= _TRAILER_LEN or line[-_TRAILER_LEN:-10] != _CRC_HEAD or line[-2:] != b'"}':
        return None
    try:
        crc = int(line[-10:-2], 16)
    except ValueError:
        return None
    body = line[:-_TRAILER_LEN] + b"}"
    return body if zlib.crc32(body) == crc else None


def seq_of(body: bytes) -> int | None:
    """Fast path: the seq from a verified canonical body, without a JSON parse."""
    end = body.find(b",", 7)
    if not body.startswith(b'{"seq":') or end < 0:
        return None
    try:
        return int(body[7:end])
    except ValueError:
        return None


def verified_seq(line: bytes) -> int | None:
    """The seq of a line whose crc verifies, else None: verified_body + seq_of without copies (hot path)."""
    if line[-_TRAILER_LEN:-10] != _CRC_HEAD or line[-2:] != b'"}' or line[:7] != b'{"seq":':
        return None
    try:
        if zlib.crc32(b"}", zlib.crc32(memoryview(line)[:-_TRAILER_LEN])) != int(line[-10:-2], 16):
            return None
        return int(line[7 : line.index(b",", 7)])
    except ValueError:
        return None


def _as_record(obj: Any) -> Record | None:
    try:
        seq, ts, kind, data = obj["seq"], obj["ts"], obj["kind"], obj["data"]
    except (KeyError, TypeError):
        return None
    if type(seq) is not int or type(ts) is not str or type(kind) is not str or type(data) is not dict:
        return None
    return Record(seq, ts, kind, data)


def parse(body: bytes) -> Record | None:
    """The record in a verified line (its "crc" member is ignored), or None if it has not the shape."""
    try:
        return _as_record(_loads(body.decode("utf-8")))
    except ValueError:
        return None


def decode_line(line: bytes) -> Record | None:
    """Verify and parse one line; None if torn or corrupt."""
    body = verified_body(line)
    return parse(body) if body is not None else None


def parse_many(lines: list[bytes], idx: range | list[int], path: Path) -> list[Record]:
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
            if parse(line) is None:
                raise JournalError("record has a valid checksum but not the record shape", path, i + 1) from None
        raise


def split_lines(buf: bytes) -> list[bytes]:
    """Lines without their newlines; a final line without one is kept (it may be complete)."""
    lines = buf.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def kind_patterns(kinds: Iterable[str]) -> Iterator[bytes]:
    """Byte patterns one of which a body with that kind must contain (a cheap pre-filter)."""
    for k in kinds:
        yield b'"kind":' + _dumps_utf8(k).encode() + b","
        yield b'"kind":' + _dumps_ascii(k).encode() + b","


def scan_valid_prefix(path: Path, buf: bytes) -> tuple[int, Record | None, int]:
    """(length of the valid prefix, last record, record count) of an open segment's bytes.

    A bad tail (torn by a crash: nothing valid after it) ends the prefix; a valid record after
    a bad one, or out of sequence, is corruption and raises ``JournalError``.
    """
    good, last, count, bad_line, pos = 0, None, 0, None, 0
    for n, line in enumerate(split_lines(buf), 1):
        end, pos = min(pos + len(line) + 1, len(buf)), pos + len(line) + 1
        rec = decode_line(line)
        if rec is None:
            bad_line = bad_line or n
        elif bad_line is not None:
            raise JournalError("corrupt record (bad JSON or checksum) before valid ones", path, bad_line)
        elif last is not None and rec.seq != last.seq + 1:  # out of sequence: corruption, not a tear
            raise JournalError(f"seq {rec.seq} follows {last.seq}", path, n)
        else:
            good, last, count = end, rec, count + 1
    return good, last, count
