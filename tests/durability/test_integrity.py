"""Journal integrity at function level: digests taken when a segment closes, checked on open,
and ``repair`` cutting at the damage with a record of what was lost (issue 12). The CLI side is
tests/test_cli_integrity.py."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from cvagents.durability import integrity
from cvagents.durability.integrity import DamageKind
from cvagents.durability.journal import Journal, JournalDamaged
from cvagents.durability.journal_files import append_digests, load_digests
from cvagents.durability.retention import apply_retention
from cvagents.errors import CVAgentsError


def build(d: Path, n: int = 40) -> list[Path]:
    with Journal.open(d, segment_max_bytes=600, fsync=False) as j:
        for i in range(n):
            j.append("k", {"i": i})
    return sorted(d.glob("segment_*.jsonl"))


def flip(path: Path, at: int) -> None:
    b = bytearray(path.read_bytes())
    b[at] ^= 0x01
    path.write_bytes(bytes(b))


def files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file() and p.name != ".lock"}


def test_a_closed_segment_carries_the_digest_taken_when_it_closed(tmp_path):
    segs = build(tmp_path)
    closed = load_digests(tmp_path)
    assert sorted(closed) == [p.name for p in segs[:-1]]  # every closed one, not the open one
    import hashlib

    for p in segs[:-1]:
        e = closed[p.name]
        assert e["bytes"] == p.stat().st_size and e["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
    first = [closed[p.name]["first_seq"] for p in segs[:-1]]
    last = [closed[p.name]["last_seq"] for p in segs[:-1]]
    assert first[0] == 1 and all(a + 1 == b for a, b in zip(last, first[1:]))
    assert integrity.check(tmp_path) == ([], {})


@pytest.mark.parametrize(
    "damage, kind, where",
    [
        (lambda segs: flip(segs[1], 200), DamageKind.ALTERED, (1, 3)),  # a flipped byte in line 3
        (lambda segs: segs[2].write_bytes(segs[2].read_bytes()[:-30]), DamageKind.TRUNCATED, (2, 7)),
        (lambda segs: segs[1].unlink(), DamageKind.MISSING, (1, None)),
        (lambda segs: segs[0].unlink(), DamageKind.MISSING, (0, None)),
        (lambda segs: segs[1].write_bytes(segs[1].read_bytes() + b"junk\n"), DamageKind.ALTERED, (1, "end")),
        (lambda segs: flip(segs[-1], 10), DamageKind.CORRUPT, (-1, 1)),  # before good lines of the open one
    ],
    ids=["flipped-byte", "truncated", "deleted", "deleted-first", "appended", "open-segment-mid"],
)
def test_damage_is_found_on_open_named_and_cut_by_repair(tmp_path, damage, kind, where):
    segs = build(tmp_path)
    seg, line = segs[where[0]], where[1]
    if line == "end":  # the first line after those it closed with
        line = seg.read_bytes().count(b"\n") + 1
    damage(segs)
    before = files(tmp_path)
    with pytest.raises(JournalDamaged) as err:
        Journal.open(tmp_path)
    d = err.value.damage
    assert (d.kind, d.path, d.line) == (kind, seg, line)
    assert str(err.value).startswith(f"{seg}:{line}: " if line else f"{seg}: ") and "--repair" in str(err.value)
    assert isinstance(err.value, CVAgentsError) and files(tmp_path) == before  # refused: nothing touched
    if kind != DamageKind.CORRUPT:
        assert Journal.open(tmp_path, read_only=True).last_seq > 0  # a reader still opens it

    with Journal.open(tmp_path, repair=True, fsync=False) as j:
        (report,) = j.repairs
        kept = report["kept_through_seq"]
        assert report["segment"] == seg.name and report["line"] == line and report["lost_records"] > 0
        assert j.last_seq == kept + 1 and j.last().kind == "journal_repaired" and j.last().data == report
        assert [r.data["i"] for r in j.records(kinds="k")] == list(range(kept))  # every record before the cut
        assert j.append("k", {"i": "after"}).seq == kept + 2
    aside = tmp_path / report["moved_to"]
    assert json.loads((aside / "REPAIR.json").read_text()) == report  # the cut bytes are kept, not deleted
    assert sum(p.read_bytes().count(b"\n") for p in aside.glob("*.cut")) >= report["lost_records"]
    assert integrity.check(tmp_path) == ([], {})
    with Journal.open(tmp_path) as j:  # sound again: opens without repair
        assert j.last_seq == kept + 2


def test_a_damaged_archive_is_found_and_cut(tmp_path):
    segs = build(tmp_path / "t")
    entries = apply_retention(tmp_path / "t", tmp_path / "archive", keep_segments=1)
    gz = tmp_path / "archive" / (entries[1]["name"] + ".gz")
    gz.write_bytes(gzip.compress(gzip.decompress(gz.read_bytes()).replace(b'"i":9', b'"i":8')))
    damage, _ = integrity.check(tmp_path / "t")
    assert [(d.kind, d.path) for d in damage] == [(DamageKind.ALTERED, gz)]
    with pytest.raises(JournalDamaged, match="does not match its sha256"):
        Journal.open(tmp_path / "t")
    with Journal.open(tmp_path / "t", repair=True, fsync=False) as j:
        assert j.repairs[0]["kept_through_seq"] == entries[0]["last_seq"]
        assert [r.seq for r in j.records(include_archived=True)] == list(range(1, entries[0]["last_seq"] + 2))
    assert not gz.exists() and len(segs) > 3


def test_an_unreadable_index_is_damage_and_repair_keeps_every_live_record(tmp_path):
    build(tmp_path)
    (tmp_path / "index.json").write_text("{garbage")  # the index of archived segments
    with pytest.raises(JournalDamaged, match="index.json: unreadable index"):
        Journal.open(tmp_path)
    with Journal.open(tmp_path, repair=True, fsync=False) as j:
        assert [r.data["i"] for r in j.records(kinds="k")] == list(range(40))


def test_segments_closed_before_digests_are_verified_then_sealed(tmp_path):
    segs = build(tmp_path)
    (tmp_path / "digests.jsonl").unlink()
    damage, seal = integrity.check(tmp_path)
    assert damage == [] and sorted(seal) == [p.name for p in segs[:-1]]
    Journal.open(tmp_path).close()  # the writer records them
    assert sorted(load_digests(tmp_path)) == [p.name for p in segs[:-1]]
    # ... and a legacy segment that is corrupt is damage, with its line
    (tmp_path / "digests.jsonl").unlink()
    lines = segs[1].read_bytes().splitlines(keepends=True)
    segs[1].write_bytes(b"".join(lines[:3] + [lines[3].replace(b'"k"', b'"K"')] + lines[4:]))
    assert [(d.kind, d.path, d.line) for d in integrity.check(tmp_path)[0]] == [(DamageKind.CORRUPT, segs[1], 4)]


def test_the_open_segments_torn_tail_and_an_index_ahead_of_it_are_not_damage(tmp_path):
    """A crash tears the open segment's last line; a mirror copies digests.jsonl after the
    segments it scanned, so it may already hold the digest of the segment it copied while open."""
    segs = build(tmp_path)
    last = segs[-1]
    last.write_bytes(last.read_bytes() + b'{"seq":41,"ts":"x","kind":"k","da')
    ahead = {"first_seq": 36, "last_seq": 50, "count": 15, "bytes": 9999, "sha256": "0" * 64}
    append_digests(tmp_path, {last.name: ahead, "segment_000099.jsonl": ahead})
    assert integrity.check(tmp_path)[0] == []
    with Journal.open(tmp_path) as j:
        assert j.recovered_tail > 0 and j.last_seq == 40 and j.repairs == []
    assert sorted(load_digests(tmp_path)) == [p.name for p in segs[:-1]]  # dropped by the writer


def test_retention_refuses_to_archive_a_segment_that_fails_its_digest(tmp_path):
    segs = build(tmp_path / "t")
    flip(segs[0], 100)
    from cvagents.durability.journal import JournalError

    with pytest.raises(JournalError, match="sha256 taken when it closed; not archived"):
        apply_retention(tmp_path / "t", tmp_path / "a", keep_segments=1)
    assert segs[0].exists()


def test_the_check_on_open_reads_no_record_of_a_sound_closed_segment(tmp_path, monkeypatch):
    """O(segments): a size and a sha256 per closed segment; its records are read only where the
    digest fails (the open segment is scanned as before, to cut a torn tail)."""
    segs = build(tmp_path, 400)
    real, seen = integrity.verified_seq, []
    monkeypatch.setattr(integrity, "verified_seq", lambda line: seen.append(line) or real(line))
    assert integrity.check(tmp_path) == ([], {})
    assert seen == []
    flip(segs[3], 50)
    assert [d.path for d in integrity.check(tmp_path)[0]] == [segs[3]]
    assert 0 < len(seen) <= segs[3].read_bytes().count(b"\n")  # that segment's lines only


def test_a_torn_digest_line_is_no_digest_and_the_next_one_still_lands(tmp_path):
    segs = build(tmp_path)
    path = tmp_path / "digests.jsonl"
    path.write_bytes(path.read_bytes()[:-20])  # the last digest torn by a crash
    assert integrity.check(tmp_path)[0] == []  # that segment's records are verified instead
    with Journal.open(tmp_path, segment_max_bytes=600, fsync=False) as j:
        for i in range(10):
            j.append("k", {"i": i})
    assert sorted(load_digests(tmp_path)) == [p.name for p in sorted(tmp_path.glob("segment_*.jsonl"))[:-1]]
    assert len(segs) > 3
