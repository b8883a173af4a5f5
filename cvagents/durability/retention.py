"""The journal's retention: closed segments are gzipped into an archive, then (optionally)
old archives are deleted, so a 24/7 run's disk use stays bounded.

Each step is safe to re-run after a crash at any point: a segment is deleted only once its
verified archive and its index entry are durable, and an archive only once the index no
longer lists it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from pathlib import Path

from cvagents.durability.atomic import atomic_write_bytes, fsync_dir
from cvagents.durability.journal_files import list_segments, load_digests, load_index, write_index
from cvagents.durability.journal_lines import JournalError, seq_of, split_lines, verified_body


def apply_retention(journal_dir: str | os.PathLike, archive_dir: str | os.PathLike, keep_segments: int) -> list[dict]:
    """Gzip closed segments older than the newest ``keep_segments`` into ``archive_dir``.

    Each archived segment is verified, written as ``<name>.gz`` (fsynced), entered in the
    journal's ``index.json`` (first/last seq, count, sha256 of the uncompressed bytes, archive
    path relative to the journal dir, sha256 of the archive) and only then deleted; a segment
    that no longer matches the digest taken when it closed is not archived. Re-running after a crash at any
    point is safe. The open segment is never touched. Returns the new index entries.
    """
    if keep_segments < 0:
        raise ValueError("keep_segments must be >= 0")
    jd, ad = Path(journal_dir), Path(archive_dir)
    closed = list_segments(jd)[:-1]
    victims = closed[: max(0, len(closed) - keep_segments)]
    if not victims:
        return []
    ad.mkdir(parents=True, exist_ok=True)
    digests = load_digests(jd)
    index = load_index(jd)
    done = []
    for seg in victims:
        buf = seg.read_bytes()
        sealed = digests.get(seg.name)
        if sealed is not None and hashlib.sha256(buf).hexdigest() != sealed["sha256"]:
            raise JournalError("closed segment does not match the sha256 taken when it closed; not archived", seg)
        first = last = None
        count = 0
        for n, line in enumerate(split_lines(buf), 1):
            body = verified_body(line)
            seq = seq_of(body) if body is not None else None
            if seq is None or (last is not None and seq != last + 1):
                raise JournalError("corrupt record; segment not archived", seg, n)
            first = seq if first is None else first
            last, count = seq, count + 1
        if count == 0:
            raise JournalError("empty closed segment; not archived", seg)
        gz = ad / (seg.name + ".gz")
        packed = gzip.compress(buf, compresslevel=6, mtime=0)
        atomic_write_bytes(gz, packed)
        entry = {
            "name": seg.name,
            "first_seq": first,
            "last_seq": last,
            "count": count,
            "sha256": hashlib.sha256(buf).hexdigest(),
            "bytes": len(buf),
            "archive": os.path.relpath(gz, jd),
            "archive_sha256": hashlib.sha256(packed).hexdigest(),  # checked on open without unpacking
        }
        index["segments"] = [e for e in index["segments"] if e["name"] != seg.name] + [entry]
        index["segments"].sort(key=lambda e: e["first_seq"])
        write_index(jd, index)
        seg.unlink()
        fsync_dir(jd)
        done.append(entry)
    return done


def read_archive(journal_dir: Path, entry: dict) -> tuple[Path, bytes]:
    """(path, uncompressed bytes) of an archived segment, checked against its index entry."""
    path = (journal_dir / entry["archive"]).resolve()
    try:
        buf = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as exc:
        raise JournalError(f"cannot read archived segment {entry['name']}: {exc}", path) from None
    if hashlib.sha256(buf).hexdigest() != entry["sha256"]:
        raise JournalError(f"archived segment {entry['name']} does not match its sha256 in the index", path)
    return path, buf


def prune_archives(journal_dir: str | os.PathLike, keep_archived: int) -> list[dict]:
    """Delete archived segments beyond the newest ``keep_archived`` (the retention rule's bound
    on disk use). The index drops them first (and remembers ``pruned_through_seq``), then the
    files go, so a crash in between leaves only an unlisted file. Returns the dropped entries."""
    if keep_archived < 0:
        raise ValueError("keep_archived must be >= 0")
    jd = Path(journal_dir)
    index = load_index(jd)
    entries = sorted(index["segments"], key=lambda e: e["first_seq"])
    victims = entries[: max(0, len(entries) - keep_archived)]
    if not victims:
        return []
    index["segments"] = entries[len(victims) :]
    index["pruned_through_seq"] = max(index.get("pruned_through_seq", 0), victims[-1]["last_seq"])
    write_index(jd, index)
    for e in victims:
        try:
            (jd / e["archive"]).unlink()
        except FileNotFoundError:
            pass
    return victims
