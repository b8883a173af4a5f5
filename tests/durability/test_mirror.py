import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem
from waiting import wait_for

from cvagents.durability import folder_target
from cvagents.durability.journal import Journal
from cvagents.durability.mirror import MANIFEST_NAME, Mirror
from cvagents.durability.restore import RestoreError, restore


@pytest.fixture
def ws(tmp_path):
    """A small workspace: a journal with a few closed segments, and some reports."""
    jdir, rdir = tmp_path / "ws/sessions/session_1/trajectories", tmp_path / "ws/reports"
    j = Journal.open(jdir, segment_max_bytes=3000, fsync=False)
    for i in range(60):
        j.append("agent_response", {"i": i, "text": "t" * 40})
    (rdir / "planning").mkdir(parents=True)
    (rdir / "handoff").mkdir(parents=True)
    (rdir / "planning/summary_1.md").write_text("# meeting 1\n")
    (rdir / "handoff/pending_actions.json").write_text(json.dumps({"actions": [1, 2]}))
    (rdir / "handoff/.pending_actions.json.tmp123").write_text("half-written temp: never mirrored")
    yield j, {"trajectories": jdir, "reports": rdir}
    j.close()


def manifest(target: Path) -> dict:
    return json.loads((target / MANIFEST_NAME).read_text())


def assert_mirror_matches(sources: dict, target: Path):
    """Every mirrorable source file is listed, and every listed file matches its sha256."""
    files = manifest(target)["files"]
    expected = {
        f"{name}/{p.relative_to(root).as_posix()}"
        for name, root in sources.items()
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }
    assert set(files) == expected
    for rel, meta in files.items():
        data = (target / rel).read_bytes()[: meta["size"]]
        assert hashlib.sha256(data).hexdigest() == meta["sha256"], rel
        name, _, sub = rel.partition("/")
        assert (sources[name] / sub).read_bytes()[: meta["size"]] == data


@pytest.mark.parametrize("incremental", [True, False], ids=["double-buffered", "whole-file"])
def test_copies_only_what_changed(ws, tmp_path, incremental):
    j, sources = ws
    target = tmp_path / "drive"
    m = Mirror(sources, target, incremental_copies=incremental)
    first = m.flush()
    nfiles = len(j.segments()) + 3  # the segments, the journal's index.json, two reports
    assert first.ok and first.files_copied == nfiles and first.manifest_written
    assert not (target / "reports/handoff/.pending_actions.json.tmp123").exists()
    mtime = (target / MANIFEST_NAME).stat().st_mtime_ns

    again = m.flush()
    assert again.ok and (again.files_copied, again.bytes_copied, again.manifest_written) == (0, 0, False)
    assert (target / MANIFEST_NAME).stat().st_mtime_ns == mtime

    closed = {p.name: (target / "trajectories" / p.name).stat().st_mtime_ns for p in j.segments()[:-1]}
    for i in range(3):
        j.append("tool_call", {"i": i})
    r = m.flush()
    assert r.files_copied == 1 and r.bytes_copied == j.segments()[-1].stat().st_size  # the open segment only
    assert_mirror_matches(sources, target)
    assert all((target / "trajectories" / n).stat().st_mtime_ns == t for n, t in closed.items())

    (sources["reports"] / "planning/summary_1.md").write_text("# meeting 1, revised\n")
    (sources["reports"] / "handoff/pending_actions.json").touch()  # new mtime, same content
    r = m.flush()
    assert (r.files_copied, r.bytes_copied) == (1, len("# meeting 1, revised\n"))
    assert m.status()["pending"] == 0 and m.status()["files_mirrored"] == nfiles
    assert_mirror_matches(sources, target)


@pytest.mark.skipif(not folder_target.CAN_EXCHANGE, reason="needs renameat2 (Linux)")
def test_growing_segment_is_double_buffered_on_local_folders(ws, tmp_path):
    j, sources = ws
    target = tmp_path / "drive"
    m = Mirror(sources, target)
    m.flush()
    seg = j.segments()[-1]
    sizes, written = [seg.stat().st_size], []
    for k in range(4):
        for i in range(3):
            j.append("tool_call", {"k": k, "i": i})
        r = m.flush()
        assert r.files_copied == 1 and j.segments()[-1] == seg
        sizes.append(seg.stat().st_size)
        written.append(r.bytes_copied)
        assert (target / "trajectories" / seg.name).read_bytes() == seg.read_bytes()
        assert_mirror_matches(sources, target)
    # The first change is a whole copy, and the old copy becomes the hidden stage; from then on
    # a tick writes only what was appended since the stage copy (two ticks' worth).
    assert written == [sizes[1]] + [sizes[k + 1] - sizes[k - 1] for k in range(1, 4)]
    stage = target / "trajectories" / f".{seg.name}.mirror-stage"
    assert stage.exists() and stage.read_bytes() == seg.read_bytes()[: stage.stat().st_size]
    # Once the segment is closed its stage copy goes; a restore never sees stage files.
    while j.segments()[-1] == seg:
        j.append("tool_call", {"pad": "p" * 200})
    j.append("tool_call", {})
    assert m.flush().ok
    assert not stage.exists()
    assert (target / "trajectories" / seg.name).read_bytes() == seg.read_bytes()
    assert_mirror_matches(sources, target)
    res = restore(target, {"trajectories": tmp_path / "r/t", "reports": tmp_path / "r/r"})
    assert not any(".mirror-" in f for f in res.files)


def test_open_segment_snapshot_stops_at_last_complete_line(ws, tmp_path):
    j, sources = ws
    target = tmp_path / "drive"
    m = Mirror(sources, target)
    m.flush()
    seg = j.segments()[-1]
    complete = seg.stat().st_size
    with open(seg, "ab") as f:  # a record still being written by another process
        f.write(b'{"seq":61,"ts":"2026-')
    r = m.flush()
    assert r.files_copied == 0
    assert (target / "trajectories" / seg.name).read_bytes() == seg.read_bytes()[:complete]
    assert manifest(target)["files"][f"trajectories/{seg.name}"]["size"] == complete


def test_manifest_lists_sha256_and_is_written_last(ws, tmp_path):
    j, sources = ws
    moves = []

    class LoggingFS(MemoryFileSystem):
        protocol = "logmem"

        def mv(self, path1, path2, **kw):
            super().mv(path1, path2, **kw)
            moves.append(path2.rsplit("/", 1)[-1])

    fsspec.register_implementation("logmem", LoggingFS, clobber=True)
    url = f"logmem://m-{uuid.uuid4().hex}"
    m = Mirror(sources, url, manifest_extra=lambda: {"journal_last_seq": j.last_seq})
    assert m.flush().ok
    assert moves[-1] == MANIFEST_NAME and moves.count(MANIFEST_NAME) == 1 and len(moves) == len(j.segments()) + 4
    j.append("x", {})
    (sources["reports"] / "planning/summary_2.md").write_text("# 2\n")
    moves.clear()
    assert m.flush().ok
    assert sorted(moves[:-1]) == sorted([j.segments()[-1].name, "summary_2.md"]) and moves[-1] == MANIFEST_NAME
    fs, root = fsspec.core.url_to_fs(url)
    man = json.loads(fs.cat_file(f"{root}/{MANIFEST_NAME}"))
    assert man["extra"] == {"journal_last_seq": 61}
    for rel, meta in man["files"].items():
        assert hashlib.sha256(fs.cat_file(f"{root}/{rel}")).hexdigest() == meta["sha256"]
    # Locally too: the manifest is the newest file in the mirror.
    target = tmp_path / "drive"
    Mirror(sources, target).flush()
    newest = max((p for p in target.rglob("*") if p.is_file()), key=lambda p: p.stat().st_mtime_ns)
    assert newest.name == MANIFEST_NAME


def test_target_vanishes_and_comes_back(ws, tmp_path):
    j, sources = ws
    target = tmp_path / "drive" / "cvagents"
    target.mkdir(parents=True)
    m = Mirror(sources, target, interval_s=0.02).start()
    try:
        assert wait_for(lambda: m.status()["last_success"] is not None)
        shutil.rmtree(target)  # Drive unmounted / folder deleted mid-run
        for i in range(20):
            j.append("during_outage", {"i": i})
        assert wait_for(lambda: m.status()["consecutive_failures"] >= 2)
        st = m.status()
        assert "missing" in st["last_error"] and st["running"]
        assert not target.exists()  # not silently re-created on local disk
        r = m.flush()  # a caller's flush reports, never raises
        assert not r.ok and r.errors
        target.mkdir()
        assert wait_for(lambda: m.status()["consecutive_failures"] == 0, timeout=15)
        for i in range(5):
            j.append("after", {"i": i})
    finally:
        final = m.stop()
    assert final.ok and not m.status()["running"]
    assert_mirror_matches(sources, target)
    assert f"trajectories/{j.segments()[0].name}" in manifest(target)["files"]  # re-copied after the wipe


@contextmanager
def read_only_dir(path: Path):
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(0o755)
        return
    # root ignores permission bits: use the immutable attribute instead
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("cannot make a read-only folder here (root without chattr)")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_read_only_target_does_not_raise(ws, tmp_path):
    _j, sources = ws
    target = tmp_path / "ro"
    target.mkdir()
    m = Mirror(sources, target, interval_s=1.0)
    with read_only_dir(target):
        with pytest.raises(OSError):
            (target / "probe").write_text("x")  # the folder really is read-only
        r1, r2, r3 = m.flush(), m.flush(), m.flush()
        assert not r1.ok and r1.files_copied == 0
        st = m.status()
        assert st["consecutive_failures"] == 3 and st["last_success"] is None and st["pending"] > 0
        assert [r1.ok, r2.ok, r3.ok] == [False] * 3
        assert st["backoff_s"] == 4.0  # 1, 2, 4 ... seconds
    r = m.flush()
    assert r.ok and m.status()["consecutive_failures"] == 0 and m.status()["backoff_s"] == 1.0
    assert_mirror_matches(sources, target)


def test_full_disk_does_not_raise(ws, tmp_path):
    j, sources = ws
    target = tmp_path / "small"
    target.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(target)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("needs root to mount a tiny tmpfs")
    try:
        m = Mirror(sources, target)
        r = m.flush()
        assert not r.ok and any("No space" in e for e in r.errors)
        assert m.status()["consecutive_failures"] == 1 and m.status()["pending"] > 0
    finally:
        subprocess.run(["umount", str(target)], check=True)


class FlakyFS(MemoryFileSystem):
    """A memory filesystem whose writes fail with a non-OSError while `broken` is set."""

    protocol = "flakymem"
    broken = False

    def _open(self, path, mode="rb", **kw):
        if "w" in mode and FlakyFS.broken:
            raise RuntimeError("backend exploded")
        return super()._open(path, mode=mode, **kw)


def test_fsspec_error_is_recorded_then_recovers(ws, tmp_path):
    j, sources = ws
    fsspec.register_implementation("flakymem", FlakyFS, clobber=True)
    url = f"flakymem://m-{uuid.uuid4().hex}"
    m = Mirror(sources, url)
    FlakyFS.broken = True
    try:
        r = m.flush()
        assert not r.ok and "backend exploded" in r.errors[0]
        assert m.status()["consecutive_failures"] == 1
    finally:
        FlakyFS.broken = False
    assert m.flush().ok and m.status()["consecutive_failures"] == 0
    res = restore(url, {"trajectories": tmp_path / "t", "reports": tmp_path / "r"})
    assert len(res.files) == len(j.segments()) + 3  # with the journal's index.json


def test_memory_fsspec_target_and_restore(ws, tmp_path):
    j, sources = ws
    url = f"memory://mirror-{uuid.uuid4().hex}"
    m = Mirror(sources, url, manifest_extra=lambda: {"journal_last_seq": j.last_seq})
    assert m.flush().ok
    j.append("late", {"x": 1})
    assert m.flush().files_copied == 1
    dest = {"trajectories": tmp_path / "new/traj", "reports": tmp_path / "new/reports"}
    res = restore(url, dest)
    assert res.extra == {"journal_last_seq": 61} and len(res.files) == len(j.segments()) + 3
    with Journal.open(dest["trajectories"]) as j2:
        assert list(j2.records()) == list(j.records())


def test_restore_into_empty_workspace(ws, tmp_path):
    j, sources = ws
    target = tmp_path / "drive"
    Mirror(sources, target, manifest_extra=lambda: {"journal_last_seq": j.last_seq}).flush()
    # Appended after the last manifest: the mirror copy is newer than the manifest.
    j.append("after_manifest", {})
    seg = j.segments()[-1]
    shutil.copy(seg, target / "trajectories" / seg.name)

    dest = {"trajectories": tmp_path / "new/sessions/session_1/trajectories", "reports": tmp_path / "new/reports"}
    res = restore(target, dest)
    assert res.extra == {"journal_last_seq": 60}
    for name, root in sources.items():
        for p in root.rglob("*"):
            if p.is_file() and not p.name.startswith(".") and p != seg:
                assert (dest[name] / p.relative_to(root)).read_bytes() == p.read_bytes()
    assert not (dest["reports"] / "handoff/.pending_actions.json.tmp123").exists()
    with Journal.open(dest["trajectories"]) as j2:
        assert j2.last_seq == 60 and [r.seq for r in j2.records()] == list(range(1, 61))
    # Restoring again is a no-op; a workspace with other content is not clobbered.
    assert restore(target, dest).unchanged and not restore(target, dest).files
    (dest["reports"] / "planning/summary_1.md").write_text("local edit")
    with pytest.raises(RestoreError, match="exists with other content"):
        restore(target, dest)


def test_restore_rejects_a_corrupt_mirror_and_writes_nothing(ws, tmp_path):
    _j, sources = ws
    target = tmp_path / "drive"
    Mirror(sources, target).flush()
    victim = next((target / "trajectories").glob("segment_*.jsonl"))
    data = bytearray(victim.read_bytes())
    data[10] ^= 1
    victim.write_bytes(bytes(data))
    dest = {"trajectories": tmp_path / "new/traj", "reports": tmp_path / "new/reports"}
    with pytest.raises(RestoreError, match="mismatch") as err:
        restore(target, dest)
    assert victim.name in str(err.value)
    assert not any(p.is_file() for d in dest.values() if d.exists() for p in d.rglob("*"))
    with pytest.raises(RestoreError, match="no MANIFEST"):
        restore(tmp_path / "empty", dest)


def test_resumed_mirror_adopts_what_the_target_holds(ws, tmp_path):
    j, sources = ws
    target = tmp_path / "drive"
    Mirror(sources, target).flush()
    j.append("more", {})
    m2 = Mirror(sources, target)  # a new process after a disconnect
    r = m2.flush()
    assert r.ok and r.files_copied == 1  # only the grown open segment
    assert_mirror_matches(sources, target)


def test_deleted_and_archived_files_leave_the_manifest(ws, tmp_path):
    j, sources = ws
    target = tmp_path / "drive"
    m = Mirror(sources, target)
    m.flush()
    (sources["reports"] / "planning/summary_1.md").unlink()
    r = m.flush()
    assert r.files_removed == 1 and "reports/planning/summary_1.md" not in manifest(target)["files"]
    assert not (target / "reports/planning/summary_1.md").exists()
    # A source folder that is missing (not yet created, unmounted) is not taken as a deletion.
    shutil.rmtree(sources["reports"])
    assert m.flush().files_removed == 0
    assert "reports/handoff/pending_actions.json" in manifest(target)["files"]


def test_flush_is_thread_safe(ws, tmp_path):
    j, sources = ws
    target = tmp_path / "drive"
    m = Mirror(sources, target, interval_s=0.005).start()
    errors = []

    def worker():
        for i in range(20):
            j.append("t", {"i": i})
            r = m.flush()
            errors.extend(r.errors)

    ts = [threading.Thread(target=worker) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert m.stop().ok and not errors
    assert_mirror_matches(sources, target)


RUN_AND_MIRROR = """
import os, sys, time
sys.path.insert(0, sys.argv[3])
from cvagents.durability.journal import Journal
from cvagents.durability.mirror import Mirror
j = Journal.open(sys.argv[1], segment_max_bytes=20_000, fsync=False)
m = Mirror({"trajectories": sys.argv[1]}, sys.argv[2], interval_s=0.01,
           manifest_extra=lambda: {"journal_last_seq": j.last_seq}).start()
i = 0
while True:
    j.append("tool_call", {"i": i, "pad": "z" * (i % 300)})
    i += 1
    if i % 50 == 0:
        time.sleep(0.002)
"""


def test_kill_9_mid_run_then_resume_from_mirror(tmp_path):
    """The user's disconnect: the VM dies mid-tick; a new VM restores the mirror and carries on."""
    import signal
    import sys

    jdir, target = tmp_path / "vm1/trajectories", tmp_path / "drive"
    repo = Path(__file__).resolve().parents[2]
    p = subprocess.Popen([sys.executable, "-c", RUN_AND_MIRROR, str(jdir), str(target), str(repo)])
    try:
        assert wait_for(
            lambda: (
                (target / MANIFEST_NAME).exists()
                and (manifest(target)["extra"] or {}).get("journal_last_seq", 0) > 3000
            ),
            timeout=30,
        )
        time.sleep(0.013)
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    promised = manifest(target)["extra"]["journal_last_seq"]
    dest = tmp_path / "vm2/trajectories"
    res = restore(target, {"trajectories": dest})
    assert res.extra["journal_last_seq"] == promised and len(res.files) > 3
    with Journal.open(dest) as j:
        assert [r.seq for r in j.records()] == list(range(1, j.last_seq + 1))
        assert j.last_seq >= promised  # the manifest never promises more than the mirror holds
        j.append("resumed", {})
        m = Mirror({"trajectories": dest}, target)
        r = m.flush()
        assert r.ok
    assert not [p for p in target.rglob("*.mirror-tmp")]
    assert_mirror_matches({"trajectories": dest}, target)


def test_resumed_mirror_with_an_empty_open_segment(tmp_path):
    jdir, target = tmp_path / "t", tmp_path / "drive"
    with Journal.open(jdir) as j:  # a fresh journal: one empty segment
        assert Mirror({"trajectories": jdir}, target).flush().ok
        j.append("first", {})
        m = Mirror({"trajectories": jdir}, target)  # resumed process
        r = m.flush()
        assert r.ok and r.files_copied == 1
        j.append("second", {})
        assert m.flush().ok
    assert_mirror_matches({"trajectories": jdir}, target)
