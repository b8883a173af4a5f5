"""Is a journal whole? Checking it on open, and cutting it at the damage when asked.

When a segment closes, the writer appends its digest to ``digests.jsonl`` (size, sha256, seq
range, record count); archives have theirs in ``index.json``. Opening a journal checks, per segment and without parsing a
record: every closed segment is there, numbered without a gap, as long as when it closed and
with the same sha256 (a segment is at most ``segment_max_bytes`` and retention keeps a few, so
this is cheap); each archive is there with the digest taken when it was archived; the seq
ranges follow on. Only where a digest fails are the segment's lines read, to name the line.

The newest segment is the open one: its torn last line is the normal trace of a crash, cut on
open (``Journal``); a digest for it or a later one (a mirror copies ``digests.jsonl`` after the
segments it scanned) is not damage. A segment closed before digests were kept has its
records verified instead, and the writer then records its digest.

``cut`` is ``cvagents run --repair``: it keeps what comes before the first damage, moves the
rest aside into ``damaged/<time>/`` (nothing is deleted) and returns a record of what was lost.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from cvagents.durability.atomic import atomic_write_bytes, atomic_write_json, fsync_dir
from cvagents.durability.journal_files import (
    INDEX_NAME,
    SEGMENT_RE,
    append_digests,
    create_segment,
    list_segments,
    load_digests,
    load_index,
    segment_name,
    tail_record,
    write_digests,
    write_index,
)
from cvagents.durability.journal_lines import JournalError, scan_valid_prefix, split_lines, verified_seq

__all__ = ["Damage", "DamageKind", "JournalDamaged", "check", "closed_entry", "cut", "prepare", "segment_no"]

DAMAGED_DIR = "damaged"  # where a repair moves what it cut off

log = logging.getLogger("cvagents.durability.journal")


class DamageKind(StrEnum):
    CORRUPT = "corrupt"  # a record fails its checksum or breaks the sequence of seqs
    TRUNCATED = "truncated"  # a closed segment is shorter than when it closed
    ALTERED = "altered"  # a closed segment or an archive no longer matches the digest taken when it closed
    MISSING = "missing"  # a closed segment or an archived one is gone
    INDEX = "index"  # index.json cannot be read


@dataclass(frozen=True)
class Damage:
    kind: DamageKind
    path: Path  # the segment, archive or index at fault
    line: int | None  # the first line that is not as it was (None: the whole file)
    what: str
    number: int  # the segment's number: a repair keeps segments before it (0: the index)
    keep_bytes: int = 0  # the verified bytes of that segment a repair keeps

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}" if self.line else f"{self.path}: {self.what}"


class JournalDamaged(JournalError):
    """The journal is damaged where it should be whole; ``damage`` says where and how."""

    def __init__(self, damage: Damage):
        self.damage = damage
        super().__init__(
            f"{damage.what}: the journal is damaged; `cvagents run --repair` cuts it there (what follows "
            f"is moved aside and the run resumes from the last checkpoint before it), or start afresh with --new-session",
            damage.path,
            damage.line,
        )


def closed_entry(first_seq: int, last_seq: int, count: int, size: int, sha256: str) -> dict[str, Any]:
    return {"first_seq": first_seq, "last_seq": last_seq, "count": count, "bytes": size, "sha256": sha256}


def segment_no(name: str) -> int:
    """The number in a segment's name; -1 for another name."""
    m = SEGMENT_RE.match(name)
    return int(m.group(1)) if m else -1


def verified_prefix(buf: bytes, first_seq: int | None) -> tuple[int, int, int | None, int | None]:
    """(bytes, records, last seq, first bad line or None) of the complete, verified, in-sequence
    lines a closed segment's bytes start with."""
    pos = count = 0
    last = first_seq - 1 if first_seq else None
    for n, line in enumerate(split_lines(buf), 1):
        seq = verified_seq(line)
        if seq is None or pos + len(line) >= len(buf) or (last is not None and seq != last + 1):
            return pos, count, last, n
        pos, count, last = pos + len(line) + 1, count + 1, seq
    return pos, count, last, None


def check(directory: str | os.PathLike, *, deep: bool = False) -> tuple[list[Damage], dict[str, dict]]:
    """Every damage in the journal at ``directory``, in journal order, and the digests of closed
    segments not recorded yet (the writer records them). ``deep``: also decompress
    every archive (``cvagents verify``). Reads; never writes."""
    d = Path(directory)
    for attempt in (1, 2):
        try:
            return _check(d, deep)
        except FileNotFoundError:  # archived or cut by the writer while we looked: look again
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _check(d: Path, deep: bool) -> tuple[list[Damage], dict[str, dict]]:
    try:
        index = load_index(d)
    except JournalError as err:
        return [Damage(DamageKind.INDEX, d / INDEX_NAME, None, f"unreadable index of the journal: {err.reason}", 0)], {}
    segs = list_segments(d)
    live = {p.name for p in segs}
    damage: list[Damage] = []
    seal: dict[str, dict] = {}
    expected: int | None = int(index.get("pruned_through_seq", 0)) + 1
    archived = sorted((e for e in index["segments"] if e["name"] not in live), key=lambda e: e["first_seq"])
    for e in archived:
        path = Path(os.path.normpath(d / e["archive"]))
        if expected is not None and e["first_seq"] != expected:
            damage.append(
                Damage(
                    DamageKind.MISSING,
                    path,
                    1,
                    f"records {expected} to {e['first_seq'] - 1} are in no segment",
                    segment_no(e["name"]),
                )
            )
        problem = _archive_problem(d, e, deep)
        if problem is not None:
            damage.append(Damage(*problem, segment_no(e["name"])))
        expected = e["last_seq"] + 1
    if not segs:
        return damage, seal
    newest = segment_no(segs[-1].name)
    numbers = {segment_no(p.name): p for p in segs}
    if archived:
        first_no = segment_no(archived[-1]["name"]) + 1
    else:  # nothing archived: the journal starts at segment 1, unless all its archives were pruned
        first_no = min(numbers) if index.get("pruned_through_seq") else 1
    closed = load_digests(d)
    for no in range(first_no, newest):
        found = numbers.get(no)
        if found is None:
            damage.append(Damage(DamageKind.MISSING, d / segment_name(no), None, "closed segment is missing", no))
            expected = None  # where the next one starts can no longer be checked
            continue
        path = found
        entry = closed.get(path.name)
        if entry is None:  # closed before digests were kept, or just closed: verify its records once
            buf = path.read_bytes()
            size, count, last, bad = verified_prefix(buf, expected)
            if bad is not None:
                what = "corrupt record (bad checksum, torn line or out of sequence) in a closed segment"
                damage.append(Damage(DamageKind.CORRUPT, path, bad, what, no, size))
                expected = None  # where the next one should start is unknown
                continue
            if last is not None and count:
                seal[path.name] = closed_entry(last - count + 1, last, count, size, hashlib.sha256(buf).hexdigest())
                expected = last + 1
            continue
        if expected is not None and entry["first_seq"] != expected:
            damage.append(
                Damage(
                    DamageKind.MISSING, path, 1, f"starts at seq {entry['first_seq']} where {expected} was expected", no
                )
            )
        bad_segment = _segment_problem(path, entry, no)
        if bad_segment is not None:
            damage.append(bad_segment)
        expected = entry["last_seq"] + 1
    damage.extend(_open_problem(segs[-1], expected, newest))
    return damage, seal


def _segment_problem(path: Path, entry: dict, no: int) -> Damage | None:
    """A closed segment against the digest taken when it closed; reads its lines only if it fails."""
    buf = path.read_bytes()
    size = len(buf)
    if size == entry["bytes"] and hashlib.sha256(buf).hexdigest() == entry["sha256"]:
        return None
    keep, count, _last, bad = verified_prefix(buf, entry["first_seq"])
    if size < entry["bytes"]:
        what = f"closed segment truncated: {size} bytes where it closed with {entry['bytes']}"
        return Damage(DamageKind.TRUNCATED, path, bad or count + 1, what, no, keep)
    if size > entry["bytes"] and hashlib.sha256(buf[: entry["bytes"]]).hexdigest() == entry["sha256"]:
        return Damage(
            DamageKind.ALTERED, path, entry["count"] + 1, "bytes added to a closed segment", no, entry["bytes"]
        )
    what = "closed segment does not match the sha256 taken when it closed"
    if bad is None:  # every line verifies, yet the bytes differ: rewritten; no line can be trusted
        return Damage(DamageKind.ALTERED, path, None, what + " (rewritten)", no, 0)
    return Damage(DamageKind.ALTERED, path, bad, what, no, keep)


def _archive_problem(d: Path, e: dict, deep: bool) -> tuple[DamageKind, Path, int | None, str] | None:
    path = Path(os.path.normpath(d / e["archive"]))
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return DamageKind.MISSING, path, None, f"archived segment {e['name']} is missing"
    if "archive_sha256" in e and not deep:
        if hashlib.sha256(raw).hexdigest() == e["archive_sha256"]:
            return None
        return DamageKind.ALTERED, path, None, f"archived segment {e['name']} does not match its sha256"
    try:
        buf = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        return DamageKind.ALTERED, path, None, f"archived segment {e['name']} cannot be read: {exc}"
    if hashlib.sha256(buf).hexdigest() != e["sha256"]:
        return DamageKind.ALTERED, path, None, f"archived segment {e['name']} does not match its sha256"
    return None


def _open_problem(path: Path, expected: int | None, no: int) -> list[Damage]:
    """The open segment: a torn last line is normal; a bad record before good ones is not."""
    buf = path.read_bytes()
    try:
        _good, last, count = scan_valid_prefix(path, buf)
    except JournalError as e:
        keep = sum(len(x) + 1 for x in split_lines(buf)[: (e.line or 1) - 1])
        return [Damage(DamageKind.CORRUPT, path, e.line, e.reason, no, keep)]
    if last is not None and expected is not None and last.seq - count + 1 != expected:
        what = f"starts at seq {last.seq - count + 1} where {expected} was expected"
        return [Damage(DamageKind.MISSING, path, 1, what, no)]
    return []


# --------------------------------------------------------------------------- on a writer's open


def prepare(directory: Path, *, repair: bool, fsync: bool) -> list[dict[str, Any]]:
    """What a writer does on open: refuse a damaged journal (``JournalDamaged``, the first
    damage), or with ``repair`` cut it there (again, if more follows); then record the digests
    not recorded yet and drop those of segments that are not closed (a mirror's copy ran ahead).
    Returns what each cut lost."""
    d = Path(directory)
    repairs: list[dict[str, Any]] = []
    for _ in range(5):  # each cut removes the first damage; a few is plenty
        damage, seal = check(d)
        if not damage:
            break
        if not repair:
            raise JournalDamaged(damage[0])
        log.warning("journal %s: repairing: %s", d, damage[0])
        repairs.append(cut(d, damage[0], fsync=fsync))
    else:
        raise JournalDamaged(damage[0])
    segs = list_segments(d)
    newest = segment_no(segs[-1].name) if segs else 0
    digests = load_digests(d)
    if any(segment_no(n) >= newest for n in digests):
        write_digests(d, {n: e for n, e in digests.items() if segment_no(n) < newest}, fsync=fsync)
    if seal:
        append_digests(d, seal, fsync=fsync)
    return repairs


# --------------------------------------------------------------------------- repair


def cut(directory: str | os.PathLike, damage: Damage, *, fsync: bool = True) -> dict[str, Any]:
    """Cut the journal at ``damage``: keep the segments before it and the verified lines of its
    own segment (which becomes the open one); move the rest aside into ``damaged/<time>/``.
    Returns what was lost (journaled by the writer as ``journal_repaired``)."""
    d = Path(directory)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S_%f")
    aside = d / DAMAGED_DIR / stamp
    aside.mkdir(parents=True)
    report: dict[str, Any] = {
        "problem": str(damage),
        "segment": damage.path.name,
        "line": damage.line,
        "moved_to": os.path.relpath(aside, d),
        "lost_records": 0,
        "lost_bytes": 0,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if damage.kind == DamageKind.INDEX:
        os.replace(d / INDEX_NAME, aside / INDEX_NAME)
        segs = list_segments(d)
        first = _first_seq(segs[0]) if segs else None
        write_index(d, {"version": 1, "segments": [], "pruned_through_seq": (first or 1) - 1}, fsync=fsync)
        report["problem"] += "; archived segments are no longer listed"
        atomic_write_json(aside / "REPAIR.json", report)
        return report
    index = load_index(d)
    no = damage.number
    kept: bytes = b""
    for p in list_segments(d):
        if segment_no(p.name) < no:
            continue
        buf = p.read_bytes()
        if segment_no(p.name) == no:
            kept = buf[: damage.keep_bytes]
            buf = buf[damage.keep_bytes :]
        report["lost_records"] += buf.count(b"\n")
        report["lost_bytes"] += len(buf)
        os.replace(p, aside / (p.name + ".cut"))
    for e in list(index["segments"]):
        if segment_no(e["name"]) >= no:
            src = d / e["archive"]
            if src.exists() and src.resolve().is_relative_to(d.resolve().parent):  # the index is not trusted
                os.replace(src, aside / src.name)
            report["lost_records"] += e.get("count", 0)
            report["lost_bytes"] += e.get("bytes", 0)
            index["segments"].remove(e)
    write_index(d, index, fsync=fsync)
    write_digests(d, {k: v for k, v in load_digests(d).items() if segment_no(k) < no}, fsync=fsync)
    seg = d / segment_name(no)
    if kept:
        atomic_write_bytes(seg, kept, fsync=fsync)
    else:
        create_segment(seg)
    report["kept_through_seq"] = _last_seq_before(d, index, no, kept)
    atomic_write_json(aside / "REPAIR.json", report)
    fsync_dir(d)
    return report


def _first_seq(path: Path) -> int | None:
    with open(path, "rb") as f:
        line = f.readline().rstrip(b"\n")
    return verified_seq(line) if line else None


def _last_seq_before(d: Path, index: dict, no: int, kept: bytes) -> int:
    """The last seq the cut journal holds."""
    lines = split_lines(kept)
    if lines:
        return verified_seq(lines[-1]) or 0
    prev = d / segment_name(no - 1)
    if prev.exists():
        rec = tail_record(prev)
        return rec.seq if rec else 0
    archived = [e["last_seq"] for e in index["segments"]]
    return max([*archived, int(index.get("pruned_through_seq", 0))])
