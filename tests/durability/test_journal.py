import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from cvagents.durability.journal import Journal, JournalDamaged, JournalError
from cvagents.durability.retention import apply_retention

REPO = Path(__file__).resolve().parents[2]


def seqs(j, **kw):
    return [r.seq for r in j.records(**kw)]


def test_round_trip_and_reopen(tmp_path):
    with Journal.open(tmp_path, fsync=False) as j:
        r1 = j.append("meeting_started", {"meeting": 1, "agents": ["a", "b"], "text": "naïve ✓"})
        r2 = j.append("agent_response", {"agent": "a", "n": 1.5, "nested": {"z": 1, "a": None}})
        assert (r1.seq, r2.seq) == (1, 2) and j.last_seq == 2
        assert r1.ts.endswith("+00:00")
    with Journal.open(tmp_path) as j:
        assert list(j.records()) == [r1, r2]
        assert j.last() == r2 and j.last("meeting_started") == r1 and j.last("nope") is None
        assert j.append("x", {}).seq == 3
        assert [r.kind for r in j.records(kinds={"x", "meeting_started"})] == ["meeting_started", "x"]
        assert seqs(j, since_seq=2) == [3]


def test_line_format_is_verifiable_json(tmp_path):
    with Journal.open(tmp_path, fsync=False) as j:
        j.append("k", {"b": 2, "a": [1, 2]})
    line = (tmp_path / "segment_000001.jsonl").read_text().splitlines()[0]
    obj = json.loads(line)
    assert list(obj) == ["seq", "ts", "kind", "data", "crc"]
    crc = obj.pop("crc")
    canonical = '{"seq":%d,"ts":%s,"kind":%s,"data":%s}' % (
        obj["seq"],
        json.dumps(obj["ts"]),
        json.dumps(obj["kind"]),
        json.dumps(obj["data"], sort_keys=True, separators=(",", ":")),
    )
    import zlib

    assert crc == "%08x" % zlib.crc32(canonical.encode())


def test_bad_payloads_write_nothing(tmp_path):
    with Journal.open(tmp_path, fsync=False) as j:
        with pytest.raises(TypeError):
            j.append("k", {"obj": object()})
        with pytest.raises(ValueError):
            j.append("", {})
        assert j.append("k", {"t": (1, 2)}).data == {"t": [1, 2]}  # what you get is what is stored
        assert j.last_seq == 1


def test_seq_contiguous_across_rotation_and_closed_segments_untouched(tmp_path):
    j = Journal.open(tmp_path, segment_max_bytes=1000, fsync=False)
    for i in range(200):
        j.append("k", {"i": i, "pad": "x" * (i % 50)})
    segs = j.segments()
    assert len(segs) > 5
    closed = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in segs[:-1]}
    for i in range(50):
        j.append("k", {"i": i})
    assert all((p.stat().st_size, p.stat().st_mtime_ns) == v for p, v in closed.items())
    j.close()
    j = Journal.open(tmp_path, segment_max_bytes=1000)
    assert seqs(j) == list(range(1, 251)) and j.last_seq == 250
    assert seqs(j, since_seq=237) == list(range(238, 251))
    assert [r.data["i"] for r in j.records(since_seq=200)][:2] == [0, 1]


def test_torn_last_line_is_cut_and_appends_continue(tmp_path):
    with Journal.open(tmp_path, fsync=False) as j:
        for i in range(5):
            j.append("k", {"i": i})
    seg = tmp_path / "segment_000001.jsonl"
    full = seg.read_bytes()
    lines = full.splitlines(keepends=True)
    torn = lines[-1][: len(lines[-1]) // 2]
    seg.write_bytes(b"".join(lines[:-1]) + torn)  # record 5 half-written
    with Journal.open(tmp_path) as j:
        assert j.recovered_tail == len(torn)
        assert j.last_seq == 4 and seqs(j) == [1, 2, 3, 4]
        assert j.append("k", {"i": "again"}).seq == 5
    assert seqs(Journal.open(tmp_path, read_only=True)) == [1, 2, 3, 4, 5]


def test_checksum_mismatch_in_last_line_is_cut(tmp_path):
    with Journal.open(tmp_path, fsync=False) as j:
        for i in range(3):
            j.append("k", {"i": i})
    seg = tmp_path / "segment_000001.jsonl"
    lines = seg.read_bytes().splitlines(keepends=True)
    bad = lines[-1].replace(b'"i":2', b'"i":7')  # still valid JSON, wrong crc
    assert bad != lines[-1] and json.loads(bad)
    seg.write_bytes(b"".join(lines[:-1]) + bad)
    with Journal.open(tmp_path) as j:
        assert j.recovered_tail == len(bad)
        assert [r.data["i"] for r in j.records()] == [0, 1]
        assert j.append("k", {"i": 2}).seq == 3


def test_missing_newline_on_a_complete_last_record_is_kept(tmp_path):
    with Journal.open(tmp_path, fsync=False) as j:
        j.append("k", {"i": 0})
        j.append("k", {"i": 1})
    seg = tmp_path / "segment_000001.jsonl"
    seg.write_bytes(seg.read_bytes()[:-1])
    with Journal.open(tmp_path) as j:
        assert j.recovered_tail == 0 and j.last_seq == 2
        j.append("k", {"i": 2})
        assert seqs(j) == [1, 2, 3]


def test_corruption_in_a_closed_segment_names_file_and_line(tmp_path):
    with Journal.open(tmp_path, segment_max_bytes=600, fsync=False) as j:
        for i in range(40):
            j.append("k", {"i": i})
        seg = j.segments()[1]
    lines = seg.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"k"', b'"K"')
    seg.write_bytes(b"".join(lines))
    with pytest.raises(JournalDamaged) as damaged:  # a writer checks closed segments on open
        Journal.open(tmp_path)
    assert damaged.value.path == seg and damaged.value.line == 3
    j = Journal.open(tmp_path, read_only=True)  # a reader does not: records() finds it
    with pytest.raises(JournalError) as err:
        list(j.records())
    assert err.value.path == seg and err.value.line == 3
    assert f"{seg}:3" in str(err.value)


def test_corruption_mid_open_segment_refuses_to_open(tmp_path):
    with Journal.open(tmp_path, fsync=False) as j:
        for i in range(5):
            j.append("k", {"i": i})
    seg = tmp_path / "segment_000001.jsonl"
    lines = seg.read_bytes().splitlines(keepends=True)
    lines[1] = b"garbage\n"
    seg.write_bytes(b"".join(lines))
    with pytest.raises(JournalError) as err:
        Journal.open(tmp_path)
    assert err.value.line == 2
    assert seg.read_bytes() == b"".join(lines)  # nothing was cut


def test_one_writer_many_readers(tmp_path):
    j = Journal.open(tmp_path, fsync=False)
    j.append("k", {})
    with pytest.raises(JournalError, match="already open"):
        Journal.open(tmp_path)
    reader = Journal.open(tmp_path, read_only=True)
    with pytest.raises(JournalError):
        reader.append("k", {})
    j.append("k", {})
    assert seqs(reader) == [1, 2]
    # A reader tolerates an in-flight (torn) tail without cutting it.
    with open(tmp_path / "segment_000001.jsonl", "ab") as f:
        f.write(b'{"seq":3,"ts":"')
    assert seqs(reader) == [1, 2]
    r2 = Journal.open(tmp_path, read_only=True)
    assert r2.last_seq == 2 and r2.recovered_tail == 15
    j.close()
    Journal.open(tmp_path).close()  # the lock is released on close


def test_concurrent_appends(tmp_path):
    j = Journal.open(tmp_path, segment_max_bytes=5000, fsync=False)

    def worker(t):
        for i in range(250):
            j.append("k", {"t": t, "i": i})

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    recs = list(j.records())
    assert [r.seq for r in recs] == list(range(1, 2001))
    assert sorted((r.data["t"], r.data["i"]) for r in recs) == [(t, i) for t in range(8) for i in range(250)]
    j.close()
    assert Journal.open(tmp_path).last_seq == 2000


def test_records_while_appending_never_sees_partial_lines(tmp_path):
    j = Journal.open(tmp_path, segment_max_bytes=20_000, fsync=False)
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            j.append("k", {"i": i, "pad": "y" * 3000})
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(20):
            got = seqs(j)
            assert got == list(range(1, len(got) + 1))
    finally:
        stop.set()
        t.join()


CHILD = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, sys.argv[2])
    from cvagents.durability.journal import Journal
    if sys.argv[3] == "slow":
        # Make every journal write land in two halves so SIGKILL tears records for real.
        real_write = os.write
        def write(fd, data):
            if fd <= 2:
                return real_write(fd, data)
            half = max(1, len(data) // 2)
            n = real_write(fd, bytes(data[:half]))
            time.sleep(0.003)
            return n + real_write(fd, bytes(data[half:]))
        os.write = write
    j = Journal.open(sys.argv[1], segment_max_bytes=100_000, fsync=False)
    os.write(1, b"open %d %d\\n" % (j.last_seq, j.recovered_tail))
    i = 0
    while True:
        r = j.append("tick", {"i": i, "pad": "x" * ((i * 7919) % 30_000)})
        os.write(1, b"%d\\n" % r.seq)   # printed only after append() returned
        i += 1
""")


def run_and_kill(jdir, mode, n_confirm):
    """Start a child appending to jdir, SIGKILL it after n_confirm appends; return its header
    (last_seq, recovered_tail at its open) and the last seq it confirmed."""
    p = subprocess.Popen([sys.executable, "-c", CHILD, str(jdir), str(REPO), mode], stdout=subprocess.PIPE)
    header = p.stdout.readline().split()
    assert header[0] == b"open", header
    confirmed, deadline = int(header[1]), time.monotonic() + 30
    for _ in range(n_confirm):
        line = p.stdout.readline()
        assert line and time.monotonic() < deadline, "child died or hung"
        confirmed = int(line)
    if mode == "slow":
        time.sleep(0.0015)  # aim into the middle of a write
    os.kill(p.pid, signal.SIGKILL)
    for line in p.stdout.read().split():  # anything it confirmed before dying
        confirmed = int(line)
    p.wait()
    assert p.returncode == -signal.SIGKILL
    return int(header[1]), int(header[2]), confirmed


def check_journal(jdir, confirmed):
    with Journal.open(jdir, segment_max_bytes=100_000) as j:
        assert [r.seq for r in j.records()] == list(range(1, j.last_seq + 1))
        assert j.last_seq >= confirmed  # nothing append() confirmed is lost
        return j.last_seq, j.recovered_tail


def test_kill_9_loses_nothing_confirmed(tmp_path):
    jdir, confirmed = tmp_path / "j", 0
    for round_ in range(4):
        start_seq, _, confirmed_now = run_and_kill(jdir, "fast", 100 + 37 * round_)
        assert start_seq >= confirmed
        confirmed = confirmed_now
        check_journal(jdir, confirmed)
    assert len(list(jdir.glob("segment_*.jsonl"))) > 3


def test_kill_9_mid_write_tail_is_cut_and_run_continues(tmp_path):
    jdir, cut = tmp_path / "j", []
    for round_ in range(5):
        _, _, confirmed = run_and_kill(jdir, "slow", 20 + round_)
        last_seq, tail = check_journal(jdir, confirmed)
        cut.append(tail)
        # A torn record was never confirmed, so it is cut; every confirmed one survives.
        assert last_seq == confirmed or (last_seq == confirmed + 1 and tail == 0)
    assert sum(t > 0 for t in cut) >= 2, cut  # the kills really did tear records


def test_retention_keeps_records_readable(tmp_path):
    jdir, adir = tmp_path / "traj", tmp_path / "archive"
    j = Journal.open(jdir, segment_max_bytes=800, fsync=False)
    for i in range(120):
        j.append("k%d" % (i % 4), {"i": i})
    nsegs = len(j.segments())
    entries = apply_retention(jdir, adir, keep_segments=2)
    assert len(entries) == nsegs - 3 and len(j.segments()) == 3
    assert sorted(p.name for p in adir.iterdir()) == [e["name"] + ".gz" for e in entries]
    index = json.loads((jdir / "index.json").read_text())
    assert [e["first_seq"] for e in index["segments"]] == [e["first_seq"] for e in entries]
    assert index["segments"][0]["first_seq"] == 1
    first_live = entries[-1]["last_seq"] + 1
    assert seqs(j) == list(range(first_live, 121))
    assert seqs(j, include_archived=True) == list(range(1, 121))
    assert seqs(j, since_seq=5, include_archived=True) == list(range(6, 121))
    assert apply_retention(jdir, adir, keep_segments=2) == []  # idempotent
    j.append("k9", {"i": 120})
    j.close()
    # Everything archived; the open segment is left alone. Reopen still knows where it was.
    apply_retention(jdir, adir, keep_segments=0)
    j = Journal.open(jdir, segment_max_bytes=800, fsync=False)
    assert j.last_seq == 121 and len(j.segments()) == 1
    assert seqs(j, include_archived=True) == list(range(1, 122))
    assert j.last("k0").data["i"] == 116  # found in the archive
    # A tampered archive is detected.
    gz = adir / entries[0]["name"]
    gz = gz.with_name(gz.name + ".gz")
    import gzip

    gz.write_bytes(gzip.compress(gzip.decompress(gz.read_bytes()).replace(b'"i":0', b'"i":9')))
    with pytest.raises(JournalError, match="sha256"):
        list(j.records(include_archived=True))


def test_retention_when_open_segment_is_fresh(tmp_path):
    """Crash right after rotation: the open segment is empty, its predecessor archived."""
    j = Journal.open(tmp_path / "t", segment_max_bytes=200, fsync=False)
    for i in range(10):
        j.append("k", {"i": i})
    j.close()
    last = Journal.open(tmp_path / "t", read_only=True).segments()[-1]
    nxt = last.with_name("segment_%06d.jsonl" % (int(last.stem.split("_")[1]) + 1))
    nxt.touch()
    apply_retention(tmp_path / "t", tmp_path / "a", keep_segments=0)
    with Journal.open(tmp_path / "t") as j:
        assert j.last_seq == 10 and j.last().seq == 10
        assert j.append("k", {}).seq == 11
        assert seqs(j, include_archived=True) == list(range(1, 12))
