"""`make demo` five times while two busy loops load both cores: the same story every time.

    /work/main/.venv/bin/python benchmarks/bench_demo_stability.py [--runs 5] [--busy 2]

The accelerated clock runs fast only while the coordinator waits; a step's work counts at its
real duration. So the meetings, the heartbeats, the tools each heartbeat carries out, the
rollout decisions, the stage V1 reaches and V2's fate must not depend on how busy the machine
is. Each run is the demo's four commands (``cvagents run`` V1, ``cvagents submit --demo
degraded``, ``cvagents run`` V2, ``cvagents status``) as real subprocesses on a fresh
workspace, at ``--time-scale 600`` with the meeting counts the Makefile gives. To keep it
affordable the first run (unloaded, the real ``make demo``) trains both demo models; the loaded
runs start from a copy of its ``research/`` and ``data/`` (``create_v1_artifacts`` then finds
the model in place, and ``submit`` submits the trained V2 as it is); everything else is run for
real. The figures of every run are printed with its wall time; exit 1 if any differ.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cvagents.clock import stopwatch  # noqa: E402
from cvagents.durability.journal import Journal  # noqa: E402
from cvagents.durability.session import sessions  # noqa: E402
from cvagents.rollout import decisions, deployment  # noqa: E402
from cvagents.ui.status import collect_status  # noqa: E402
from cvagents.workspace import Workspace  # noqa: E402

STAGES = ("shadow", "5_percent", "20_percent", "50_percent", "production")


def makefile_meetings() -> tuple[int, int]:
    """DEMO_V1_MEETINGS and DEMO_V2_MEETINGS as the Makefile sets them (one source of truth)."""
    text = (ROOT / "Makefile").read_text()
    get = lambda name: int(re.search(rf"^{name} \?= (\d+)", text, re.M).group(1))  # type: ignore[union-attr]  # noqa: E731
    return get("DEMO_V1_MEETINGS"), get("DEMO_V2_MEETINGS")


def cli(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "cvagents", *args], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit(f"cvagents {' '.join(args)} exited {p.returncode}:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")


def demo(ws: Path, v1: int, v2: int) -> dict[str, Any]:
    """The demo's four commands; the figures after V1 (stages) are read between the runs."""
    run = ["run", "--provider", "offline", "--time-scale", "600", "--workspace", str(ws)]
    cli(*run, "--meetings", str(v1))
    after_v1 = live_versions(ws)
    cli("submit", "--workspace", str(ws), "--demo", "degraded")
    cli(*run, "--meetings", str(v2))
    cli("status", "--workspace", str(ws))
    return {"after_v1": after_v1, **figures(ws)}


def live_versions(ws: Path) -> dict[str, str | None]:
    w = Workspace(ws)
    return {s: (deployment.live(w.stage_dir(s)) or {}).get("version") for s in STAGES}


def session_figures(folder: Path) -> dict[str, Any]:
    """A session's steps from its journal: meetings, heartbeats, and per meeting the heartbeats
    that followed it with the tools (and their outcome) each carried out."""
    j = Journal.open(folder / "trajectories", read_only=True)
    try:
        recs = list(j.records())
    finally:
        j.close()
    phases: list[list[list[str]]] = []
    sim_minutes: list[float] = []
    t0 = None
    for r in recs:
        if r.kind == "meeting_started":
            phases.append([])
            t = datetime.fromisoformat(r.data["time"])
            t0 = t0 or t
            sim_minutes.append(round((t - t0).total_seconds() / 60, 2))
        elif r.kind == "heartbeat_completed" and phases:
            phases[-1].append([f"{e['tool']}:{e['status']}" for e in r.data.get("executions", [])])
    end = next((r.data for r in reversed(recs) if r.kind == "session_finished"), {})
    return {
        "status": str(end.get("status")),
        "meetings": end.get("meetings_held"),
        "heartbeats": end.get("heartbeats"),
        "heartbeats_per_meeting": [len(p) for p in phases],
        "tools": phases,
        "meeting_sim_minutes": sim_minutes,  # shown, not compared: a step's real seconds count
    }


def figures(ws: Path) -> dict[str, Any]:
    w = Workspace(ws)
    found = sessions(w.sessions_dir)
    st = collect_status(ws)
    v2 = next((c for c in st["models"]["candidates"] if c["name"] == "v2"), {})
    return {
        "sessions": [session_figures(s["dir"]) for s in found],
        "decisions": [f"{d.get('kind')}:{d.get('stage')}" for d in decisions.read(w)],
        "rollbacks": [f"{d.get('stage')}: {d.get('reason')}" for d in decisions.read(w) if d.get("kind") == "rollback"],
        "final": live_versions(ws),
        "v2": {"status": v2.get("status"), "stage": v2.get("stage")},
    }


def compared(f: dict[str, Any]) -> dict[str, Any]:
    """The figures that must be the same every time (the simulated minutes are not: a step's
    real duration counts, by design)."""
    out = json.loads(json.dumps(f))
    for s in out["sessions"]:
        s.pop("meeting_sim_minutes")
    out.pop("rollbacks")  # their measured values vary; what was rolled back is in "decisions"
    return out


def schedule_only(f: dict[str, Any]) -> list[Any]:
    """What the clock decides: meetings, heartbeats and how they fall per meeting, per session."""
    return [(s["meetings"], s["heartbeats"], s["heartbeats_per_meeting"]) for s in f["sessions"]]


def brief(f: dict[str, Any]) -> str:
    a, b = f["sessions"][0], f["sessions"][-1]
    reached = max((s for s in STAGES if f["after_v1"][s]), key=STAGES.index, default="none")
    return (
        f"V1: {a['meetings']} meetings, {a['heartbeats']} heartbeats {a['heartbeats_per_meeting']}, "
        f"reached {reached}; V2: {b['meetings']} meetings, {b['heartbeats']} heartbeats "
        f"{b['heartbeats_per_meeting']}, v2 {f['v2']['status']} at {f['v2']['stage']}; "
        f"decisions {dict(Counter(f['decisions']))}; tool calls "
        f"{sum(len(h) for s in f['sessions'] for p in s['tools'] for h in p)}; "
        f"meetings at sim minutes {a['meeting_sim_minutes']} / {b['meeting_sim_minutes']}"
        + "".join(f"\n    rollback {r}" for r in f["rollbacks"])
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="loaded runs (default 5)")
    ap.add_argument("--busy", type=int, default=2, help="busy Python loops beside them (default 2: both cores)")
    a = ap.parse_args()
    v1, v2 = makefile_meetings()
    tmp = Path(tempfile.mkdtemp(prefix="bench_demo_"))
    results: list[tuple[str, dict[str, Any], float]] = []
    busy: list[subprocess.Popen] = []
    try:
        sw = stopwatch()
        base = tmp / "run0"
        f0 = demo(base, v1, v2)
        results.append(("run 0 (unloaded, trains both models)", f0, sw.elapsed()))
        print(f"run 0 unloaded: {sw.elapsed():.1f} s wall — {brief(f0)}", flush=True)
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(a.busy)]
        for i in range(1, a.runs + 1):
            ws = tmp / f"run{i}"
            for sub in ("research", "data"):
                shutil.copytree(base / sub, ws / sub)
            sw = stopwatch()
            f = demo(ws, v1, v2)
            results.append((f"run {i} ({a.busy} busy loops)", f, sw.elapsed()))
            print(f"run {i} loaded: {sw.elapsed():.1f} s wall — {brief(f)}", flush=True)
    finally:
        for p in busy:
            p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    loaded = [compared(f) for name, f, _ in results[1:]]
    same = all(f == loaded[0] for f in loaded)
    print(f"demo: V1 {v1} meetings, V2 {v2} meetings, --time-scale 600; {a.runs} runs beside {a.busy} busy loops")
    for name, _f, wall in results:
        print(f"  {name}: {wall:.1f} s wall")
    schedules_same = all(schedule_only(f) == schedule_only(results[1][1]) for _, f, _ in results[1:])
    print(f"meetings and heartbeats identical in every loaded run: {'yes' if schedules_same else 'NO'}")
    print(f"loaded runs identical (schedule, tools, decisions, final stages, v2): {'yes' if same else 'NO'}")
    if compared(results[0][1]) != loaded[0]:
        print("  (the unloaded run 0 differs: it trained the models, the loaded runs found them in place)")
    if not same:
        for name, f, _ in results[1:]:
            print(json.dumps({name: compared(f)}, indent=1)[:4000])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
