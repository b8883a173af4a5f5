"""A simulated 24-hour run: 48 meetings and 288 heartbeats on the offline provider.

    /work/main/.venv/bin/python benchmarks/bench_24h.py [--hours 24] [--time-scale 0]

The whole system runs in this process — the real offline planning and executive agents, the
real tools (torch evaluations, traffic replays, deployments, drills), the journal with a
retention rule, the mirror thread copying to a local folder. The clock is the manual one
(``--time-scale 0``, the default: simulated time only moves between steps, so the schedule is
exact and the run goes as fast as the machine allows) or the accelerated one (``--time-scale
N``). Adaptive timing is off, so a meeting every 30 minutes and a heartbeat every 5 make
exactly 48 meetings and 288 heartbeats in 24 simulated hours.

Measured: resident memory (RSS) after the first simulated hour and at hour 24 (target: within
20 %); the session folder's disk use (journal + archive) against the bound the retention rule
sets (keep_segments + 1 open segments of segment_max_bytes, plus keep_archived_segments gzipped
ones); warnings and errors logged (target: none); the mirror's failures (target: none).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cvagents.clock import Clock, ManualClock  # noqa: E402
from cvagents.config import Settings  # noqa: E402
from cvagents.durability.session import disk_usage  # noqa: E402
from cvagents.llm.cost import CostLedger  # noqa: E402
from cvagents.planning.team import build_teams  # noqa: E402
from cvagents.run.coordinator import Coordinator, RunOptions  # noqa: E402
from cvagents.runner import provider_factory  # noqa: E402

START = datetime(2025, 6, 1, 0, 0, tzinfo=UTC)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


class Counter(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record):
        self.records.append(f"{record.levelname} {record.name}: {record.getMessage()[:300]}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=24)
    ap.add_argument(
        "--time-scale", type=float, default=0, help="0: the manual clock (default); N: the accelerated clock"
    )
    ap.add_argument("--segment-bytes", type=int, default=512_000)
    ap.add_argument("--keep-segments", type=int, default=2)
    ap.add_argument("--keep-archived", type=int, default=4)
    ap.add_argument("--keep", action="store_true", help="keep the workspace (printed)")
    a = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench24h_"))
    project = tmp / "project"
    for d in ("configs", "prompts", "reports"):
        shutil.copytree(ROOT / d, project / d)
    cfg_path = project / "configs" / "autonomous_coordination.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["schedule"]["adaptive_timing"]["enabled"] = False
    cfg["journal"] = {
        "segment_max_bytes": a.segment_bytes,
        "fsync": True,
        "keep_segments": a.keep_segments,
        "keep_archived_segments": a.keep_archived,
    }
    cfg["mirror"] = {"interval_seconds": 2.0, "target": str(tmp / "mirror")}
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    settings = Settings(project)
    meetings = int(round(a.hours * 60 / settings.coordination.schedule.planning_interval_minutes))

    ws = tmp / "ws"
    print(f"workspace {ws}; training the V1 model first (not timed)...", flush=True)
    from cvagents.models import create_artifacts

    create_artifacts(ws, variant="v1")

    clock = ManualClock(START) if a.time_scale == 0 else Clock(a.time_scale, START)
    ledger = CostLedger(settings.meeting.budgets)
    teams = build_teams(
        settings, provider_factory(settings, "offline", strict=False, ledger=ledger, stop=clock.stop_event)
    )
    coord = Coordinator(
        settings,
        ws,
        RunOptions(meetings=meetings, time_scale=a.time_scale or 1.0, console=False, session_id="day"),
        teams,
        clock=clock,
        ledger=ledger,
    )
    warnings = Counter()
    logging.getLogger("cvagents").addHandler(warnings)
    bound = (
        a.keep_segments + 1
    ) * a.segment_bytes * 1.05 + a.keep_archived * a.segment_bytes  # archives: gzip, well under
    samples: dict[str, float] = {}
    peak_session = 0
    steps = {"meeting": 0, "heartbeat": 0}
    t_start = time.perf_counter()

    journal_bytes = [0]
    append = coord.journal.append

    def counting_append(kind, data):  # how much the run wrote to its journal, retention aside
        rec = append(kind, data)
        journal_bytes[0] += (
            coord.journal._size - counting_append.last
            if coord.journal._size > counting_append.last
            else coord.journal._size
        )
        counting_append.last = coord.journal._size
        return rec

    counting_append.last = 0
    coord.journal.append = counting_append

    def on_step(step, rec):
        nonlocal peak_session
        steps[step] += 1
        hours = (clock.now() - START).total_seconds() / 3600
        peak_session = max(peak_session, disk_usage(coord.session_dir))
        if "hour1" not in samples and hours >= 1:
            gc.collect()
            samples["hour1"] = rss_mb()
        if steps["meeting"] % 8 == 0 and step == "meeting":
            print(
                f"  sim {hours:5.1f} h: {steps['meeting']} meetings, {steps['heartbeat']} heartbeats, RSS {rss_mb():.0f} MB, "
                f"session dir {disk_usage(coord.session_dir) / 1e6:.2f} MB, {time.perf_counter() - t_start:.0f} s",
                flush=True,
            )

    coord.on_step = on_step
    try:
        result = coord.run()
    finally:
        gc.collect()
        samples["hour24"] = rss_mb()
        mirror = coord.mirror_status()
        coord.close()
    wall = time.perf_counter() - t_start
    hours = (clock.now() - START).total_seconds() / 3600
    ws_total = disk_usage(ws)
    reports_total = disk_usage(ws / "reports")
    growth = samples["hour24"] / samples["hour1"] - 1

    print(f"\nresult: {result}")
    print(f"simulated {hours:.1f} h in {wall:.0f} s wall: {steps['meeting']} meetings, {steps['heartbeat']} heartbeats")
    print(
        f"RSS: hour 1 {samples['hour1']:.1f} MB, hour 24 {samples['hour24']:.1f} MB ({growth * 100:+.1f} %), "
        f"peak (ru_maxrss) {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:.0f} MB"
    )
    print(
        f"journal: {coord.journal.last_seq:,} records; session folder now {disk_usage(coord.session_dir) / 1e6:.2f} MB, "
        f"peak {peak_session / 1e6:.2f} MB, bound by the retention rule {bound / 1e6:.2f} MB "
        f"(segments of {a.segment_bytes / 1e3:.0f} kB, keep {a.keep_segments} + open, {a.keep_archived} archived)"
    )
    index = (
        json.loads((coord.session_dir / "trajectories" / "index.json").read_text())
        if (coord.session_dir / "trajectories" / "index.json").exists()
        else {}
    )
    kept = index.get("segments", [])
    print(
        f"retention: {len(kept)} segments archived (gzip) and kept, every record up to seq {index.get('pruned_through_seq', 0):,} "
        f"deleted with its archive; the journal wrote about {journal_bytes[0] / 1e6:.1f} MB in all"
    )
    print(
        f"workspace: {ws_total / 1e6:.1f} MB in all, of which reports/ {reports_total / 1e6:.1f} MB, runs/ {disk_usage(ws / 'runs') / 1e6:.1f} MB, "
        f"deployment/ {disk_usage(ws / 'deployment') / 1e6:.1f} MB"
    )
    print(
        f"mirror: {mirror['ticks']} ticks, last success {mirror['last_success']}, consecutive failures {mirror['consecutive_failures']}, last error {mirror['last_error']}"
    )
    print(f"warnings/errors logged: {len(warnings.records)}")
    for w in warnings.records[:10]:
        print("   ", w)
    ok = (
        steps["meeting"] == meetings
        and abs(growth) <= 0.20
        and peak_session <= bound
        and not warnings.records
        and mirror["consecutive_failures"] == 0
        and result["status"] == "finished"
    )
    print(
        f"targets: {meetings} meetings, RSS within 20 %, disk within the retention bound, no errors -> {'PASS' if ok else 'FAIL'}"
    )
    if a.keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
