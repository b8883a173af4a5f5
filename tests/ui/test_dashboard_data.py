"""The dashboards' readers: what they report from a real run, and how they judge a folder
(empty, partly mirrored, stale, live, finished)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from cvagents.ui import dashboard_data as dd
from cvagents.ui import source

ROOT = Path(__file__).resolve().parents[2]


def _json(p: Path):
    return json.loads(p.read_text())


def bench_module():
    spec = importlib.util.spec_from_file_location("bench_dashboard", ROOT / "benchmarks" / "bench_dashboard.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_action_table_has_priority_owner_and_the_executives_status(run_ws):
    p = dd.planning_data(dd.Source(run_ws))
    handoff = _json(run_ws / "reports/handoff/pending_actions.json")
    acts = p["actions"]
    assert p["plan_meeting"] == handoff["meeting_id"]
    assert list(acts["id"]) == [a["id"] for a in handoff["actions"]]
    assert list(acts["owner"]) == [a["owner"] for a in handoff["actions"]]
    assert list(acts["priority"]) == [a["priority"] for a in handoff["actions"]]
    done = {}
    for f in (run_ws / "reports/execution").glob("execution_*.json"):
        for a in _json(f)["actions"]:
            done[a["action_id"]] = a["status"]
    expected = [done.get(f"{handoff['meeting_id']}#{a['id']}", "pending") for a in handoff["actions"]]
    assert list(acts["status"]) == expected and "succeeded" in expected


def test_meetings_participation_and_tokens(run_ws):
    p = dd.planning_data(dd.Source(run_ws))
    files = sorted((run_ws / "reports/planning").glob("actions_*.json"))
    assert list(p["meetings"]["meeting"]) == [f.stem.removeprefix("actions_") for f in reversed(files)]
    latest = _json(files[-1])
    assert list(p["decisions"]["decision"]) == [d["decision"] for d in latest["decisions"]]
    assert set(p["participation"].index) == set(latest["participants"]) and (p["participation"] == "✓").all().all()
    costs = _json(run_ws / "reports/costs.json")
    tokens = p["tokens"].set_index("agent")
    assert p["tokens_scope"] == "whole run"
    for agent, u in costs["usage_by_agent"].items():
        assert tokens.loc[agent, "input_tokens"] == u["input_tokens"]


def test_execution_counts_metrics_and_deployments_match_the_run(run_ws):
    e = dd.execution_data(dd.Source(run_ws))
    statuses = [
        x["status"] for f in (run_ws / "reports/execution").glob("execution_*.json") for x in _json(f)["executions"]
    ]
    assert e["counts"] == {s: statuses.count(s) for s in dd.STATUSES}
    metrics = _json(run_ws / "runs/report/metrics.json")
    evals = [
        r for r in metrics["history"] if r.get("kind", "evaluation") != "traffic" and r.get("ndcg_at_10") is not None
    ]
    shown = e["metrics"].dropna(subset=["ndcg_at_10"])
    assert evals and list(shown["ndcg_at_10"]) == [r["ndcg_at_10"] for r in evals]
    assert list(shown["ci_low"]) == [r["ndcg_at_10_ci95"][0] for r in evals]
    assert list(shown["latency_p95_ms"]) == [r["latency_p95_ms"] for r in evals]
    state = _json(run_ws / "reports/rollout_state.json")
    deployed = e["deployments"].set_index("stage")["live version"]
    for stage, live in state["stages"].items():
        assert deployed[stage] == (live["version"] if live else "—")
    assert list(e["gates"]["gate"]) == [g["gate"] for g in state["current"]["gates"]]
    newest_log = sorted((run_ws / "reports/execution").glob("deployments_*.log"))[-1]  # one per simulated day
    assert e["deploy_log"] and e["deploy_log"] == newest_log.read_text().splitlines()[-10:]
    assert "deploy_model stage=" in e["deploy_log"][0]
    assert e["thresholds"]["ndcg_at_10_min"] == 0.72


def test_a_finished_run_is_reported_as_finished(run_ws):
    src = dd.Source(run_ws)
    dd.execution_data(src)
    h = dd.health(src)
    assert h.state == "finished" and not h.is_mirror and "3 meetings" in h.message


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_empty_workspace_says_so(tmp_path, make):
    root = tmp_path / "ws"
    if make == "empty":
        root.mkdir()
    src = dd.Source(root)
    p, e = dd.planning_data(src), dd.execution_data(src)
    h = dd.health(src)
    assert h.state == "empty" and str(root) in h.message
    assert (
        p["actions"].empty
        and e["metrics"].empty
        and e["counts"] == {"succeeded": 0, "failed": 0, "refused": 0, "unverified": 0}
    )


def _set_session(ws: Path, **fields) -> Path:
    f = next((ws / "sessions").glob("session_*/session.json"))
    f.write_text(json.dumps({**_json(f), **fields}))
    return f


def _age_everything(ws: Path, seconds: float) -> None:
    t = time.time() - seconds
    for p in ws.rglob("*"):
        os.utime(p, (t, t))


def test_running_session_is_live_then_stale(ws_copy):
    _set_session(ws_copy, status="running", time_scale=600)
    assert dd.health(dd.Source(ws_copy), refresh_seconds=30).state == "live"
    _age_everything(ws_copy, 3600)
    h = dd.health(dd.Source(ws_copy), refresh_seconds=30)
    assert h.state == "stale" and "60 min ago" in h.message and "resume" in h.message


def test_staleness_allows_for_a_real_time_heartbeat(ws_copy):
    """At time scale 1 nothing is written for 5 minutes between heartbeats: not stale yet."""
    _set_session(ws_copy, status="running", time_scale=1.0)
    _age_everything(ws_copy, 240)
    assert dd.health(dd.Source(ws_copy), refresh_seconds=30).state == "live"
    assert dd.health(dd.Source(ws_copy), refresh_seconds=30, stale_after_s=60).state == "stale"


def _mirror(ws: Path, written_at: str | None = None, extra_files: dict | None = None) -> None:
    files = {str(p.relative_to(ws)): {"size": p.stat().st_size, "sha256": "x"} for p in ws.rglob("*") if p.is_file()}
    files.update(extra_files or {})
    (ws / "MANIFEST.json").write_text(
        json.dumps(
            {
                "format": "cvagents-mirror/1",
                "written_at": written_at or time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
                "files": files,
            }
        )
    )


def test_mirror_is_live_when_the_manifest_is_fresh(ws_copy):
    _set_session(ws_copy, status="running")
    _mirror(ws_copy)
    src = dd.Source(ws_copy)
    e = dd.execution_data(src)
    h = dd.health(src)
    assert src.is_mirror and h.is_mirror and h.state == "live" and not e["metrics"].empty


def test_mirror_is_stale_when_the_manifest_is_old(ws_copy):
    _set_session(ws_copy, status="running")
    _mirror(ws_copy, written_at="2020-01-01T00:00:00+00:00")
    h = dd.health(dd.Source(ws_copy))
    assert h.state == "stale" and "2020-01-01 00:00:00" in h.message


def test_mirror_missing_or_torn_files_are_partly_mirrored(ws_copy):
    _set_session(ws_copy, status="running")
    newest = sorted((ws_copy / "reports/execution").glob("execution_*.json"))[-1]
    _mirror(ws_copy, extra_files={"reports/execution/execution_29991231_235959.json": {"size": 10, "sha256": "x"}})
    torn = ws_copy / "runs/report/metrics.json"
    torn.write_text(torn.read_text()[:100])  # Drive has not finished copying it
    src = dd.Source(ws_copy)
    dd.planning_data(src)
    e = dd.execution_data(src)  # no exception on a torn file
    h = dd.health(src)
    assert h.state == "partial"
    assert "reports/execution/execution_29991231_235959.json" in h.missing and "runs/report/metrics.json" in h.missing
    assert "Partly mirrored" in h.message and e["metrics"].empty and e["heartbeats"] >= 1 and newest.exists()


def test_mirror_that_names_runs_report_as_report(ws_copy):
    """A mirror source name cannot hold "/": ``runs/report`` mirrored as ``report/`` is found."""
    shutil.move(ws_copy / "runs/report", ws_copy / "report")
    (ws_copy / "runs").rmdir()
    _mirror(ws_copy)
    e = dd.execution_data(dd.Source(ws_copy))
    assert not e["metrics"].empty


def test_a_refresh_reads_only_the_newest_files(tmp_path, monkeypatch):
    bench = bench_module()
    root = bench.synthesize_workspace(tmp_path / "ws", meetings=48, heartbeats=288)
    parsed: list[str] = []
    real = source._parse_json
    monkeypatch.setattr(source, "_parse_json", lambda p: parsed.append(p.name) or real(p))
    source._CACHE.clear()
    src = dd.Source(root)
    p = dd.planning_data(src, meetings=10)
    e = dd.execution_data(src, heartbeats=24, points=200)
    executions = [n for n in parsed if n.startswith("execution_")]
    actions = [n for n in parsed if n.startswith("actions_")]
    assert len(actions) <= 10 + 5 and len(executions) <= 24 + 6, (len(actions), len(executions))
    assert e["heartbeats"] == 24 and len(p["meetings"]) == 10 and len(e["metrics"]) <= 200
    assert len(p["actions"]) == 18 and set(p["actions"]["status"]) <= {
        "succeeded",
        "failed",
        "refused",
        "unverified",
        "pending",
    }
    parsed.clear()
    dd.execution_data(dd.Source(root))
    assert parsed == []  # nothing changed: nothing parsed again


def test_meeting_history_lists_every_meeting(run_ws):
    hist = dd.meeting_history(run_ws)
    assert len(hist) == 3 and list(hist["meeting"]) == sorted(hist["meeting"])
