"""Journal and mirror figures: tick cost vs journal size, resume time, append throughput.

    /work/main/.venv/bin/python benchmarks/bench_journal_mirror.py

Targets: a mirror tick with 100,000 records present + 10 new costs <= 2x one with 100 present
+ 10 new; open + read-all of a 100,000-record journal < 2 s.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cvagents.config import load_coordination_config  # noqa: E402
from cvagents.durability.journal import Journal  # noqa: E402
from cvagents.durability.mirror import Mirror  # noqa: E402

# the segment size a run uses (configs/autonomous_coordination.yaml, journal.segment_max_bytes)
SEGMENT_MAX_BYTES = load_coordination_config(
    Path(__file__).resolve().parents[1] / "configs" / "autonomous_coordination.yaml"
).journal.segment_max_bytes
TEXT = "The shadow deployment shows NDCG@10 of 0.731 and P95 latency of 41 ms; proceed to 5%. "


def payload(i: int) -> dict:
    return {"agent": "ml_engineer", "meeting": i // 500, "round": i % 7, "text": TEXT * 3, "tokens": 412}


def workspace(root: Path, n: int) -> tuple[Journal, dict[str, Path]]:
    jdir, rdir = root / "sessions/session_1/trajectories", root / "reports"
    j = Journal.open(jdir, segment_max_bytes=SEGMENT_MAX_BYTES, fsync=False)
    for i in range(n):
        j.append("agent_response", payload(i))
    for k in range(30):  # a few dozen small reports, as after a day of meetings
        p = rdir / ("planning" if k % 2 else "execution") / f"report_{k:03d}.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps({"k": k, "summary": TEXT * 5}))
    return j, {"trajectories": jdir, "reports": rdir}


def tick_times(
    cases: list[tuple[Journal, dict]], root: Path, reps: int, fsync: bool, incremental: bool | None = None
) -> list[list[float]]:
    """Per case, the time of `reps` ticks that each follow 10 new records (cases interleaved,
    so load changes on the machine hit them alike)."""
    mirrors = []
    for k, (j, sources) in enumerate(cases):
        m = Mirror(
            sources,
            root / f"target_{k}",
            fsync=fsync,
            incremental_copies=incremental,
            manifest_extra=lambda j=j: {"journal_last_seq": j.last_seq},
        )
        assert m.flush().ok  # the initial full copy is not what we measure
        mirrors.append(m)
    out: list[list[float]] = [[] for _ in cases]
    for _ in range(reps):
        for k, ((j, _sources), m) in enumerate(zip(cases, mirrors)):
            for i in range(10):
                j.append("tool_call", payload(i))
            t = time.perf_counter()
            res = m.flush()
            out[k].append(time.perf_counter() - t)
            assert res.ok and res.files_copied >= 1, res
    return out


def ms(xs: list[float]) -> str:
    return f"median {statistics.median(xs) * 1e3:7.2f} ms  p90 {sorted(xs)[int(len(xs) * 0.9)] * 1e3:7.2f} ms"


def main() -> None:
    reps = 40
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        small_j, small_src = workspace(tmp / "small", 100)
        big_j, big_src = workspace(tmp / "big", 100_000)
        open_kb = lambda j: j.segments()[-1].stat().st_size / 1e3  # noqa: E731
        print(
            f"journal sizes: 100 records = {sum(p.stat().st_size for p in small_j.segments()) / 1e6:.2f} MB in "
            f"{len(small_j.segments())} segment(s); 100,000 records = "
            f"{sum(p.stat().st_size for p in big_j.segments()) / 1e6:.1f} MB in {len(big_j.segments())} segments"
        )
        print()
        print(
            "mirror tick after 10 new records, local folder target "
            f"(median of {reps} ticks; segment_max_bytes={big_j.segment_max_bytes:,})"
        )
        for fsync in (False, True):
            s, b = tick_times([(small_j, small_src), (big_j, big_src)], tmp / f"fsync_{fsync}", reps, fsync)
            ratio = statistics.median(b) / statistics.median(s)
            print(
                f"  fsync={fsync!s:5}     {small_j.last_seq:7,} present: {ms(s)}   (open segment {open_kb(small_j):5.0f} kB)"
            )
            print(
                f"  fsync={fsync!s:5} {big_j.last_seq:11,} present: {ms(b)}   (open segment {open_kb(big_j):5.0f} kB)"
            )
            print(f"  fsync={fsync!s:5} ratio = {ratio:.2f}   (target <= 2)")
        # Worst case: the open segment nearly full, i.e. segment_max_bytes copied as a whole file every tick.
        room = (reps * 10 + 50) * len(json.dumps(payload(0))) * 1.3
        while big_j.segments()[-1].stat().st_size < big_j.segment_max_bytes - room:
            big_j.append("agent_response", payload(0))
        before = open_kb(big_j)
        for incremental in (True, False):
            s, b = tick_times(
                [(small_j, small_src), (big_j, big_src)], tmp / f"worst_{incremental}", reps // 2, False, incremental
            )
            print(
                f"  worst case, open segment {before:.0f}-{open_kb(big_j):.0f} kB, "
                f"{'double-buffered' if incremental else 'whole-file copy (as on Drive/FUSE)'}:"
            )
            print(
                f"      {big_j.last_seq:,} present {ms(b)}; {small_j.last_seq:,} present {ms(s)}; "
                f"ratio {statistics.median(b) / statistics.median(s):.2f}"
            )
        mem = Mirror(big_src, f"memory://bench-{time.time_ns()}")
        assert mem.flush().ok
        xs = []
        for _ in range(10):
            for i in range(10):
                big_j.append("tool_call", payload(i))
            t = time.perf_counter()
            assert mem.flush().ok
            xs.append(time.perf_counter() - t)
        print(f"  memory:// fsspec target, 100k present: {ms(xs)}")
        print()

        last_seq = big_j.last_seq
        big_j.close()
        small_j.close()
        print(f"resume: open + read all records ({last_seq:,} records)")
        for _ in range(3):
            t = time.perf_counter()
            j = Journal.open(big_src["trajectories"])
            t_open = time.perf_counter() - t
            n = sum(1 for _ in j.records())
            total = time.perf_counter() - t
            j.close()
            assert n == last_seq
            print(f"  open {t_open * 1e3:6.1f} ms + read {total - t_open:5.2f} s = {total:5.2f} s   (target < 2 s)")
        print()

        print("append throughput (record ~400 B)")
        for fsync, n in ((False, 50_000), (True, 2_000)):
            j = Journal.open(tmp / f"tp_{fsync}", fsync=fsync)
            t = time.perf_counter()
            for i in range(n):
                j.append("tool_call", payload(i))
            dt = time.perf_counter() - t
            j.close()
            print(f"  fsync={fsync!s:5}: {n / dt:9,.0f} appends/s  ({dt / n * 1e6:7.1f} us each, {n:,} appends)")


if __name__ == "__main__":
    main()
