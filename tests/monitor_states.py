"""A workspace as the monitors find it between two steps of a run, made from one real run.

``rewind`` keeps the run's journal up to a record and rebuilds the reports from it
(``cvagents rebuild-reports``: the same files, from the same dicts, as the run wrote them by
then), keeps the metrics measured by then, and leaves the session "running": what a monitor
reads while the run is there (or after it died there). On top of a rewound state, ``failed`` and
``rolled_back`` add one more step through the run's own writers (an execution report whose
traffic replay failed; a rollback decision).

States, by name (``make_state``): ``empty`` (a folder no run wrote to), ``deployed`` (the first
deployment made, nothing measured), ``evaluated`` (an evaluation, no traffic replay yet),
``failed`` (the traffic replay after it failed), ``rolled_back`` (the finished run, then a
rollback of shadow).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cvagents.config import CoordinationConfig
from cvagents.durability.journal_files import SEGMENT_RE
from cvagents.rollout import decisions
from cvagents.run import reports
from cvagents.run.rebuild import rebuild_reports
from cvagents.workspace import Workspace

STATES = ("empty", "deployed", "evaluated", "failed", "rolled_back")


def _session_dir(ws: Path) -> Path:
    return next(p for p in sorted((ws / "sessions").glob("session_*")) if p.is_dir())


def _records(session: Path) -> list[tuple[str, dict]]:
    out = []
    for seg in sorted(p for p in (session / "trajectories").iterdir() if SEGMENT_RE.match(p.name)):
        out += [(line, json.loads(line)) for line in seg.read_text().splitlines() if line.strip()]
    return out


def rewind(run_ws: Path, dst: Path, until: Callable[[dict], bool]) -> Path:
    """The run's workspace as it was just after the first journal record ``until`` accepts."""
    shutil.copytree(run_ws / "meta", dst / "meta")
    src_session = _session_dir(run_ws)
    session = dst / "sessions" / src_session.name
    (session / "trajectories").mkdir(parents=True)
    kept, sim_time, last_checkpoint = [], "", {}
    for line, rec in _records(src_session):
        kept.append(line)
        t = (rec.get("data") or {}).get("time")
        if rec["kind"] in ("checkpoint", decisions.JOURNAL_KIND) and t:
            sim_time = max(sim_time, str(t))
        if rec["kind"] == "checkpoint":
            last_checkpoint = rec["data"]
        if until(rec):
            break
    else:
        raise AssertionError(f"{run_ws}: the run never reached this state")
    (session / "trajectories" / "segment_000001.jsonl").write_text("\n".join(kept) + "\n")
    rebuild_reports(dst)
    metrics = json.loads((run_ws / "runs/report/metrics.json").read_text())
    history = [r for r in metrics["history"] if str(r.get("time") or "") <= sim_time]
    if history:  # no file before the first measurement, as in the run
        out = dst / "runs/report/metrics.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({**metrics, "history": history, "latest": history[-1]}))
    info = json.loads((src_session / "session.json").read_text())
    info.update(
        status="running",
        meetings_held=last_checkpoint.get("meetings_held", 0),
        heartbeats=last_checkpoint.get("heartbeats", 0),
        updated=datetime.now(UTC).isoformat(),
    )
    (session / "session.json").write_text(json.dumps(info))
    return dst


def _tool_call(tool: str) -> Callable[[dict], bool]:
    return lambda r: r["kind"] == "tool_call" and r["data"].get("tool") == tool


def _heartbeat_with(run_ws: Path, tool: str) -> dict:
    """The first heartbeat of the run that called ``tool``, as the run journaled it."""
    for _line, rec in _records(_session_dir(run_ws)):
        if rec["kind"] == "heartbeat_completed" and any(e.get("tool") == tool for e in rec["data"]["executions"]):
            return rec["data"]
    raise AssertionError(f"{run_ws}: no heartbeat called {tool}")


def make_state(run_ws: Path, dst: Path, name: str) -> Path:
    if name == "empty":
        dst.mkdir(parents=True)
        return dst
    if name == "deployed":
        return rewind(run_ws, dst, _tool_call("deploy_model"))
    checkpoint_after_evaluation = {"seen": False}

    def evaluated(r: dict) -> bool:
        if _tool_call("run_evaluation")(r):
            checkpoint_after_evaluation["seen"] = True
        return checkpoint_after_evaluation["seen"] and r["kind"] == "checkpoint"

    if name == "evaluated":
        return rewind(run_ws, dst, evaluated)
    if name == "failed":
        ws = rewind(run_ws, dst, evaluated)
        hb = json.loads(json.dumps(_heartbeat_with(run_ws, "replay_traffic")))
        for e in hb["executions"]:
            if e.get("tool") in ("replay_traffic", "collect_metrics"):
                e["status"] = "failed"
                e["result"] = {"error": "ToolFailed: the traffic replay crashed (worker killed)"}
        for a in hb["actions"]:
            a["status"] = "failed"
        reports.write_execution(Workspace.open(ws, CoordinationConfig()), hb)
        return ws
    if name == "rolled_back":
        shutil.copytree(run_ws, dst, ignore=shutil.ignore_patterns("research", "data"))
        ws = Workspace.open(dst, CoordinationConfig())
        last = max(d["time"] for d in decisions.read(ws))
        when = (datetime.fromisoformat(last) + timedelta(minutes=1)).isoformat()
        decisions.append(
            ws,
            ws.config,
            "rollback",
            stage="shadow",
            outcome="rolled_back",
            reason="rolled back shadow: failed: ndcg_at_10 0.5077 (needs >= 0.72)",
            time=when,
        )
        return dst
    raise ValueError(name)
