"""Resume of the coordinator from a 100,000-record journal.

    /work/main/.venv/bin/python benchmarks/bench_resume.py [--records 100000]

Builds a session journal of realistic records: a real (torch-free, scripted) two-meeting
session is run once, and its records — agent responses, action and tool records carrying the
state snapshot, heartbeats, checkpoints — are repeated, renumbered, to 100,000 records, ending
in a heartbeat cut off in the middle of an action (so the resume has a step to finish, an
action to replay and responses to reuse). Then it times what ``cvagents run`` does before it
can go on: ``Coordinator(...)`` (opening the journal, cutting its tail) plus ``prepare()``
(finding the last checkpoint, reading the tail after it, restoring the state, the schedule,
the ledger and the clock, writing the derived files, journaling ``session_resumed``).

Target: < 2 s. For comparison it also times a full read of the journal, which is what a
resume would cost without the checkpoint records.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from resume_helpers import coordinator, records, run, seed  # noqa: E402

from cvagents.durability.journal import Journal  # noqa: E402


def build(ws: Path, n_records: int) -> tuple[int, int]:
    """A workspace whose session 'bench' has ~n_records journal records; returns (records, bytes)."""
    tmpl_ws = ws.parent / "template"
    seed(tmpl_ws)
    run(tmpl_ws, 2)
    recs = records(tmpl_ws)
    for sub in ("reports", "runs", "deployment", "research", "data"):
        if (tmpl_ws / sub).exists():
            shutil.copytree(tmpl_ws / sub, ws / sub, dirs_exist_ok=True)
    first_meeting = next(i for i, r in enumerate(recs) if r.kind == "meeting_started")
    last_cp = max(i for i, r in enumerate(recs) if r.kind == "checkpoint")
    cycle = recs[first_meeting : last_cp + 1]
    # the tail: a heartbeat cut off after its first action's first tool result
    hb = next(i for i, r in enumerate(recs) if r.kind == "heartbeat_started")
    cut = next(i for i in range(hb, len(recs)) if recs[i].kind == "tool_call")
    tail = recs[hb : cut + 1]
    meetings_per_cycle = sum(1 for r in cycle if r.kind == "meeting_completed")
    hbs_per_cycle = sum(1 for r in cycle if r.kind == "heartbeat_completed")
    jdir = ws / "sessions" / "session_bench" / "trajectories"
    j = Journal.open(jdir, fsync=False)
    j.append("session_started", recs[0].data)
    k = 0
    while j.last_seq + len(cycle) + len(tail) <= n_records:
        for r in cycle:
            data = r.data
            if r.kind == "checkpoint":
                data = {
                    **data,
                    "meetings_held": data["meetings_held"] + k * meetings_per_cycle,
                    "heartbeats": data["heartbeats"] + k * hbs_per_cycle,
                }
            j.append(r.kind, data)
        k += 1
    for r in tail:
        data = dict(r.data)
        if r.kind == "heartbeat_started":
            data["heartbeat"] = k * hbs_per_cycle + 1
        j.append(r.kind, data)
    n = j.last_seq
    size = sum(p.stat().st_size for p in j.segments())
    j.close()
    (ws / "sessions" / "session_bench" / "session.json").write_text('{"session_id": "bench", "status": "running"}')
    return n, size


def time_resume(ws: Path) -> tuple[float, dict, int]:
    t0 = time.perf_counter()
    c = coordinator(ws, None, session_id="bench")
    info = c.prepare()
    dt = time.perf_counter() - t0
    held = c.meetings_held
    c.close()
    return dt, info, held


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        t0 = time.perf_counter()
        n, size = build(ws, a.records)
        print(
            f"journal: {n:,} records, {size / 1e6:.1f} MB in {len(list((ws / 'sessions/session_bench/trajectories').glob('segment_*')))} segments (built in {time.perf_counter() - t0:.1f} s)"
        )
        times = []
        for _ in range(a.reps):
            dt, info, held = time_resume(ws)
            times.append(dt)
        print(
            f"resume (Coordinator + prepare): median {statistics.median(times):.3f} s, max {max(times):.3f} s over {a.reps} runs "
            f"— {held} meetings restored, tail of {info['tail_records']} records after checkpoint seq {info['checkpoint_seq']:,}; "
            f"unfinished step: {info['unfinished_step']}"
        )
        j = Journal.open(ws / "sessions/session_bench/trajectories", read_only=True)
        t = time.perf_counter()
        total = sum(1 for _ in j.records())
        full_read = time.perf_counter() - t
        t = time.perf_counter()
        assert j.last("checkpoint") is not None
        last_cp = time.perf_counter() - t
        j.close()
        print(
            f"for comparison: reading all {total:,} records {full_read:.3f} s; finding the last checkpoint {last_cp * 1000:.1f} ms"
        )
        ok = max(times) < 2.0
        print(f"target: resume < 2 s -> {'PASS' if ok else 'FAIL'}")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
