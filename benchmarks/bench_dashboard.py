"""Dashboard refresh time over a long run, and whether it grows with history.

    /work/main/.venv/bin/python benchmarks/bench_dashboard.py

Synthesises workspaces in the run's file formats (48 meetings + 288 heartbeats: a day at the
guide's timing; and ten times that), then times each monitor's refresh: cold (every figure
drawn), warm (nothing changed) and after one new heartbeat with a new evaluation.
Target: a refresh of the 48/288 workspace < 1 s (median of each kind), and the 480/2880 one not
slower beyond noise. The machine's load average is printed: other work on it slows matplotlib.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cvagents.config import EXECUTIVE_ROLES as EXECUTIVE  # noqa: E402
from cvagents.config import PLANNING_ROLES as PLANNING  # noqa: E402
from cvagents.config import STAGES  # noqa: E402
from cvagents.ui.dashboard import ExecutionDashboard, PlanningDashboard  # noqa: E402

TOOLS = ("deploy_model", "run_evaluation", "run_rollback_drill", "collect_metrics")
START = datetime(2025, 10, 13, 20, 0, tzinfo=UTC)


def _stamp(t: datetime) -> str:
    return t.strftime("%Y%m%d_%H%M%S")


def _write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2))


def _evaluation(i: int, t: datetime, stage: str, rng: random.Random) -> dict:
    ndcg = 0.86 + rng.uniform(-0.02, 0.02)
    return {
        "id": f"eval_{i:05d}",
        "kind": "evaluation",
        "time": t.isoformat(),
        "stage": stage,
        "version": "v0001_81cbf1cb",
        "model_sha256": "81cbf1cb" * 8,
        "ndcg_at_10": round(ndcg, 6),
        "ndcg_at_10_ci95": [round(ndcg - 0.01, 6), round(ndcg + 0.01, 6)],
        "recall_at_10": 0.76,
        "mrr": 0.99,
        "latency_p50_ms": 3.1,
        "latency_p95_ms": round(rng.uniform(20, 45), 3),
        "latency_p99_ms": 48.0,
        "slo_compliance": round(rng.uniform(0.99, 1.0), 4),
        "p0_incidents": 0,
    }


def synthesize_workspace(root: Path, meetings: int = 48, heartbeats: int = 288, seed: int = 0) -> Path:
    """A workspace holding ``meetings`` meetings and ``heartbeats`` heartbeats in the run's formats."""
    rng = random.Random(seed)
    per_meeting = max(1, heartbeats // meetings)
    history, hb_n = [], 0
    session = "20251013_200000_bench0"
    for m in range(meetings):
        t = START + timedelta(minutes=30 * m)
        mid = f"meeting_{_stamp(t)}"
        stage = STAGES[min(len(STAGES) - 1, m * len(STAGES) // meetings)]
        actions = [
            {
                "id": k + 1,
                "action": f"Action {k + 1} of {mid}: evaluate the version live in {stage}.",
                "owner": EXECUTIVE[k % 6],
                "priority": ("high", "medium", "low")[k * 3 // 18],
                "estimated_duration": "3min",
                "success_criteria": "NDCG@10 >= 0.72",
            }
            for k in range(18)
        ]
        absent = {"critic": "HTTP 429 after 4 retries"} if m % 7 == 3 else {}
        usage = {
            a: {
                "input_tokens": 2000 + rng.randint(0, 500),
                "output_tokens": 100 + rng.randint(0, 300),
                "cached_tokens": 0,
            }
            for a in PLANNING
            if a not in absent
        }
        _write(
            root / "reports/planning" / f"actions_{mid}.json",
            {
                "meeting_id": mid,
                "timestamp": t.strftime("%Y-%m-%dT%H:%M:%S"),
                "status": "completed",
                "decisions": [
                    {"decision": f"Hold at {stage} until the gates have evidence", "rationale": "inconclusive gates"}
                ],
                "go_no_go": {"stage": stage, "decision": rng.choice(["go", "hold"]), "reason": "gates"},
                "risks": ["latency headroom"],
                "cross_pollination": ["V1 → V2: keep re-ranking under the P95 budget"],
                "actions": actions,
                "count": len(actions),
                "participants": sorted(a for a in PLANNING if a not in absent),
                "absent": absent,
                "usage_by_agent": usage,
                "cost_by_agent": {a: round(rng.uniform(0.01, 0.2), 4) for a in usage},
            },
        )
        (root / "reports/planning" / f"summary_{mid}.md").write_text(f"# Meeting summary — {mid}\n")
        (root / "reports/planning" / f"transcript_{mid}.md").write_text(
            f"# Planning meeting transcript — {mid}\n" + "words " * 2000
        )
        for h in range(per_meeting):
            hb_n += 1
            th = t + timedelta(minutes=5 * h)
            execs = []
            for k in range(3):
                a = actions[(3 * h + k) % 18]
                tool = TOOLS[(h + k) % 4]
                status = "succeeded" if rng.random() > 0.1 else rng.choice(["failed", "refused"])
                result = {"reason": "gates not passed"} if status == "refused" else {}
                if tool == "run_evaluation" and status == "succeeded":
                    rec = _evaluation(len(history), th, stage, rng)
                    history.append(rec)
                    result = rec
                execs.append(
                    {
                        "agent": a["owner"],
                        "action_id": f"{mid}#{a['id']}",
                        "action": a["action"],
                        "tool": tool,
                        "arguments": {"stage": stage},
                        "status": status,
                        "result": result,
                        "duration_s": round(rng.uniform(0.01, 2), 4),
                    }
                )
            _write(
                root / "reports/execution" / f"execution_{_stamp(th)}.json",
                {
                    "heartbeat_id": _stamp(th),
                    "heartbeat": hb_n,
                    "timestamp": th.strftime("%Y-%m-%dT%H:%M:%S"),
                    "meeting_id": mid,
                    "handoff_error": None,
                    "executions": execs,
                    "actions": [
                        {"action_id": e["action_id"], "status": e["status"], "tool": e["tool"], "owner": e["agent"]}
                        for e in execs
                    ],
                    "remaining": 18 - 3 * (h + 1),
                    "new_metrics": [],
                },
            )
    last = history[-1]
    _write(
        root / "runs/report/metrics.json",
        {
            "updated": last["time"],
            "latest": last,
            "stages": {last["stage"]: last},
            "rollback_drills": {},
            "history": history,
            "merged": [r["id"] for r in history],
        },
    )
    stage = last["stage"]
    live = {"version": "v0001_81cbf1cb", "sha256": "81cbf1cb" * 8}
    _write(
        root / "reports/rollout_state.json",
        {
            "updated": last["time"],
            "session_id": session,
            "stages_order": list(STAGES),
            "thresholds": {
                "ndcg_at_10_min": 0.72,
                "latency_p95_ms_max": 50.0,
                "slo_compliance_min": 0.99,
                "p0_incidents_max": 0,
                "rollback_test_required": True,
            },
            "stages": {s: (live if STAGES.index(s) <= STAGES.index(stage) else None) for s in STAGES},
            "current": {
                "stage": stage,
                "version": live["version"],
                "sha256": live["sha256"],
                "evaluated": True,
                "verdict": "pass",
                "gates": [
                    {
                        "gate": "ndcg_at_10",
                        "status": "pass",
                        "value": last["ndcg_at_10_ci95"][0],
                        "threshold": ">= 0.72",
                    }
                ],
            },
            "next_stage": None,
        },
    )
    hf = json.loads((root / "reports/planning" / f"actions_{mid}.json").read_text())
    _write(
        root / "reports/handoff/pending_actions.json",
        {
            "timestamp": hf["timestamp"],
            "meeting_id": mid,
            "actions": hf["actions"],
            "count": 18,
            "source": f"planning_meeting_{meetings}",
        },
    )
    _write(
        root / "reports/costs.json",
        {
            "total_usd": 1.0,
            "by_agent": {a: 0.1 for a in PLANNING},
            "usage_by_agent": {a: {"input_tokens": 1000, "output_tokens": 100, "cached_tokens": 0} for a in PLANNING},
        },
    )
    _write(
        root / "sessions" / f"session_{session}" / "session.json",
        {"session_id": session, "status": "running", "time_scale": 1.0, "meetings_held": meetings, "heartbeats": hb_n},
    )
    (root / "executive.log").write_text(
        "".join(f"2025-10-13 20:00:00 [TOOL] run_evaluation() ✅ line {i}\n" for i in range(hb_n * 4))
    )
    return root


def add_heartbeat(root: Path, n: int) -> None:
    """One more heartbeat with a new evaluation (what a live refresh then has to show)."""
    t = START + timedelta(days=30, minutes=5 * n)
    rec = _evaluation(10**6 + n, t, "production", random.Random(n))
    m = json.loads((root / "runs/report/metrics.json").read_text())
    m["history"].append(rec)
    m["latest"] = rec
    _write(root / "runs/report/metrics.json", m)
    _write(
        root / "reports/execution" / f"execution_{_stamp(t)}.json",
        {
            "heartbeat_id": _stamp(t),
            "heartbeat": 10**5 + n,
            "timestamp": t.strftime("%Y-%m-%dT%H:%M:%S"),
            "meeting_id": None,
            "executions": [
                {
                    "agent": "latency_analyst",
                    "action_id": "x#1",
                    "action": "evaluate",
                    "tool": "run_evaluation",
                    "arguments": {},
                    "status": "succeeded",
                    "result": rec,
                    "duration_s": 1.0,
                }
            ],
            "actions": [],
        },
    )


def measure(root: Path, reps: int = 7) -> dict[str, dict[str, float]]:
    """Median wall time of each kind of refresh over ``reps`` dashboards, and the slowest one."""
    out = {}
    for cls in (PlanningDashboard, ExecutionDashboard):
        cold, warm, new = [], [], []
        for r in range(reps):
            d = cls(root, refresh_seconds=0)
            d.widget()  # the widgets are updated too, as in a live notebook
            cold.append(d.refresh()["seconds"])
            warm.append(d.refresh()["seconds"])
            add_heartbeat(root, r)
            new.append(d.refresh()["seconds"])
        out[cls.__name__] = {
            "cold": statistics.median(cold),
            "warm": statistics.median(warm),
            "new heartbeat": statistics.median(new),
            "max": max(cold + warm + new),
        }
    return out


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        cases = [(48, 288), (480, 2880)]
        results = {}
        for meetings, heartbeats in cases:
            t = time.perf_counter()
            root = synthesize_workspace(Path(tmp) / f"ws_{meetings}", meetings, heartbeats)
            print(f"synthesised {meetings} meetings, {heartbeats} heartbeats in {time.perf_counter() - t:.1f} s")
            results[(meetings, heartbeats)] = measure(root)
        print()
        print(
            "median wall seconds per refresh (cold: every figure drawn; warm: nothing changed; new hb: one heartbeat and one evaluation more)"
        )
        print(f"{'workspace':>22} {'dashboard':>20} {'cold s':>8} {'warm s':>8} {'new hb s':>9} {'max s':>7}")
        for (m, h), res in results.items():
            for name, r in res.items():
                print(
                    f"{f'{m} meetings/{h} hb':>22} {name:>20} {r['cold']:8.3f} {r['warm']:8.3f} {r['new heartbeat']:9.3f} {r['max']:7.3f}"
                )
        small, big = results[cases[0]], results[cases[1]]
        ok = all(max(r["cold"], r["warm"], r["new heartbeat"]) < 1.0 for r in small.values())
        growth = max(big[n]["warm"] / max(small[n]["warm"], 1e-9) for n in small)
        print()
        print(
            f"refresh of the 48/288 workspace < 1 s (median of each kind): {'yes' if ok else 'NO'}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
        print(
            f"warm refresh, 10x the history / 1x: {growth:.2f}x (reads only the newest files; metrics.json is parsed whole)"
        )
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
