"""``cvagents status``: the guide's quick status check, read from a workspace (local or mirrored),
with the layout and stages its run left there (``Workspace.open``).

What each session did (meetings, tool calls and actions that succeeded, failed or were refused)
is counted from its journal, the source of truth, so a mirror folder (which holds the journal
but not ``executive.log``) reads exactly as its workspace; the log gives only its last lines."""

from __future__ import annotations

import json
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any

from cvagents.config import CoordinationConfig
from cvagents.durability.atomic import read_json
from cvagents.durability.journal import Journal, JournalError
from cvagents.durability.session import journal_dir
from cvagents.durability.session import sessions as all_sessions
from cvagents.durability.verify import session_problems
from cvagents.rollout import decisions, deployment, lifecycle, metrics_store
from cvagents.run.roster import describe, fallbacks, local_models
from cvagents.workspace import Workspace

_COUNTED = ("meeting_completed", "heartbeat_completed", "tool_call", "action_finished")


def session_counts(session_dir: Path) -> dict[str, Any]:
    """What one session did, from its journal (archived segments included): ``meetings``
    (completed), ``heartbeats``, ``tools`` and ``actions`` as {succeeded, failed, refused}.
    A journal that cannot be read: the counts so far and ``error`` (``status`` lists the damage)."""
    from cvagents.execution.executive import ActionStatus
    from cvagents.execution.tools import ToolStatus

    out: dict[str, Any] = {
        "meetings": 0,
        "heartbeats": 0,
        "tools": {str(t): 0 for t in ToolStatus},
        "actions": {str(a): 0 for a in ActionStatus},
        "error": None,
    }
    try:
        j = Journal.open(journal_dir(session_dir), read_only=True)
    except (JournalError, OSError) as e:
        out["error"] = str(e)
        return out
    try:
        for r in j.records(_COUNTED, include_archived=True):
            if r.kind == "meeting_completed":
                out["meetings"] += r.data.get("status") == "completed"
            elif r.kind == "heartbeat_completed":
                out["heartbeats"] += 1
            else:
                group = out["tools"] if r.kind == "tool_call" else out["actions"]
                status = str(r.data.get("status"))
                if status in group:
                    group[status] += 1
    except (JournalError, OSError) as e:
        out["error"] = str(e)
    finally:
        j.close()
    return out


def _sessions(known: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every session, oldest first: its id, status, what it did, and who served its agents."""
    out = []
    for k in known:
        info = k["info"] or {}
        out.append(
            {
                "session_id": k["id"],
                "status": info.get("status"),
                "resumes": info.get("resumes") or 0,
                **session_counts(k["dir"]),
                "fallbacks": fallbacks(info.get("agents")),
                "agents": info.get("agents") or {},
            }
        )
    return out


def _last_lines(log_file: Path, n: int = 10) -> list[str]:
    last: deque[str] = deque(maxlen=n)
    if log_file.is_file():
        with open(log_file, encoding="utf-8", errors="replace") as f:
            for line in f:
                last.append(line.rstrip("\n"))
    return list(last)


def collect_status(root: Path | str) -> dict[str, Any]:
    from cvagents.execution.executive import ActionStatus
    from cvagents.execution.tools import ToolStatus

    ws = Workspace.open(root)
    essential = {ws.rel(p): p.exists() for p in ws.essential_files()}
    metrics = metrics_store.load(ws.metrics_file)
    latest = metrics.get("latest") or {}
    known = all_sessions(ws.sessions_dir)  # newest last (by the time each session.json was written)
    session = known[-1]["info"] if known else None
    per_session = _sessions(known)
    total = lambda group, status: sum(x[group][status] for x in per_session)  # noqa: E731
    return {
        "time": datetime.now().strftime("%H:%M:%S"),
        "workspace": str(ws.root),
        "meetings": sum(x["meetings"] for x in per_session),
        "tools_succeeded": total("tools", ToolStatus.SUCCEEDED),
        "tools_failed": total("tools", ToolStatus.FAILED),
        "tools_refused": total("tools", ToolStatus.REFUSED),
        "actions": {str(a): total("actions", a) for a in ActionStatus},
        "sessions": per_session,
        "essential_files": essential,
        "essential_present": all(essential.values()),
        "stages": {s: (deployment.live(ws.stage_dir(s)) or {}).get("version") for s in ws.stages},
        "latest_metrics": {k: latest.get(k) for k in metrics_store.GATE_FIELDS} if latest else None,
        "session": session,
        "rollout": _rollout_status(ws),
        "models": models(ws, ws.config, metrics),
        "costs": read_json(ws.costs_file),
        "last_lines": _last_lines(ws.log_file),
        "damage": session_problems(ws.sessions_dir),  # damaged session.json or journal: {session, problem}
    }


def candidate_status(c: dict[str, Any]) -> str:
    """``waiting``, ``in_rollout at 20_percent``, ``rejected: <why>``, ``champion``, ``retired``."""
    if c["status"] == lifecycle.ModelStatus.IN_ROLLOUT:
        return f"in_rollout at {c['stage']}"
    if c["status"] == lifecycle.ModelStatus.REJECTED:
        return f"rejected: {c.get('rejected_reason')}"
    return str(c["status"])


def models(ws: Workspace, cfg: CoordinationConfig, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    """The champion live in production (``name``, ``version``, ``sha256``) and every candidate
    with its status (``cvagents.rollout.lifecycle``), JSON-ready."""
    cands = lifecycle.candidates(ws, cfg, metrics)
    champ = lifecycle.champion_for(ws, cfg)
    champion = None
    if champ:
        named = next((c["name"] for c in cands if c["sha256"] == champ["sha256"]), None)
        champion = {"name": champ["name"] or named, "version": champ["version"], "sha256": champ["sha256"]}
    return {
        "champion": champion,
        "candidates": [
            {
                "name": c["name"],
                "status": str(c["status"]),
                "stage": c["stage"],
                "rejected_reason": c.get("rejected_reason"),
                "describe": candidate_status(c),
                "sha256": c["sha256"],
                "path": c.get("path"),
                "adapter": c.get("adapter") or cfg.serving.adapter,
                "source": c.get("source"),
                "time": c.get("time"),
                "submitted_by": c.get("submitted_by"),
            }
            for c in cands
        ],
    }


def _rollout_status(ws: Workspace) -> dict[str, Any] | None:
    """The rollout controller's last review (reports/rollout/controller.json) and its last decision."""
    c = read_json(ws.controller_file)
    if not c:
        return None
    made = decisions.read(ws)
    last = made[-1] if made else None
    return {
        "stages": {
            k: {"status": v.get("status"), "reason": v.get("reason")}
            for k, v in (c.get("stages") or {}).items()
            if v.get("version")
        },
        "last_decision": {k: last.get(k) for k in ("time", "kind", "stage", "reason")} if last else None,
    }


def format_status(s: dict[str, Any]) -> str:
    out = [f"🕐 {s['time']} (wall clock; times in the log lines marked sim are simulated)", "=" * 60]
    out.append(f"📋 Meetings: {s['meetings']}")
    out.append(f"🔧 Tools: {s['tools_succeeded']} succeeded, {s['tools_failed']} failed, {s['tools_refused']} refused")
    out.append("🎯 Actions: " + _counted(s["actions"]))
    out.append(f"📦 Essential files: {'✅ Present' if s['essential_present'] else '❌ Missing'}")
    for p, ok in s["essential_files"].items():
        if not ok:
            out.append(f"   missing: {p}")
    out.append("🚦 Stages: " + ", ".join(f"{k}={v or '—'}" for k, v in s["stages"].items()))
    r = s.get("rollout")
    if r:
        for stage, v in r["stages"].items():
            if v["status"] != "passed":
                out.append(f"   {stage}: {v['status']} — {v['reason']}")
        if r["last_decision"]:
            d = r["last_decision"]
            out.append(f"🚦 Last rollout decision: {d['kind']} at {d['stage']} — {d['reason']}")
    md = s.get("models") or {}
    ch = md.get("champion")
    out.append(
        f"🏆 Champion: {ch['name'] or '(unnamed)'} {ch['version']} (sha256 {ch['sha256'][:12]})"
        if ch
        else "🏆 Champion: none in production yet"
    )
    for c in md.get("candidates") or []:
        if c["status"] != lifecycle.ModelStatus.CHAMPION:
            out.append(f"   candidate {c['name']} (sha256 {c['sha256'][:12]}): {c['describe']}")
    m = s["latest_metrics"]
    if m:
        out.append(
            f"📈 Latest: NDCG@10 {m.get('ndcg_at_10')}, P95 {m.get('latency_p95_ms')} ms, SLO {m.get('slo_compliance')}"
        )
    c = s.get("costs")
    if c:
        out.append(f"💰 Spent: ${c['total_usd']:.6f} in all")
        out.append("   per agent: " + ", ".join(f"{a} ${v:.6f}" for a, v in sorted(c["by_agent"].items())))
        out.append("   per meeting: " + ", ".join(f"{m} ${v:.6f}" for m, v in list(c["by_meeting"].items())[-5:]))
        out.append("   per day: " + ", ".join(f"{d} ${v:.6f}" for d, v in c["by_day"].items()))
        out.append(
            f"   prompt cache: {c.get('cached_tokens', 0)} input tokens read from it, "
            f"saving ${c.get('saved_usd', 0.0):.6f}"
        )
        failovers = [d for d in c.get("downgrades") or () if d.get("budget") == "failover"]
        if len(c.get("downgrades") or ()) > len(failovers):
            out.append(f"   budget downgrades: {len(c['downgrades']) - len(failovers)}")
        if failovers:
            out.append(f"   failovers: {len(failovers)} (last: {failovers[-1]['agent']}: {failovers[-1]['reason']})")
    for x in s["sessions"]:
        resumes = x["resumes"]
        out.append(
            f"🧭 Session {x['session_id']}: {x['status']}"
            + (f" (resumed {resumes}×)" if resumes else "")
            + f" — {x['meetings']} meetings, {x['heartbeats']} heartbeats; tools {_counted(x['tools'])}; "
            + f"actions {_counted(x['actions'])}"
        )
        if x["error"]:
            out.append(f"   ⚠️ its journal could not be read to the end: {x['error']}")
        if x["fallbacks"] or local_models(x["agents"]):
            out.append("   " + describe(x["agents"]))
    if s["session"]:
        ses = s["session"]
        m = ses.get("mirror")
        if m:
            line = f"🪞 Mirror → {m.get('target')}: last success {m.get('last_success') or 'never'}"
            if m.get("consecutive_failures"):
                line += f", ❌ failing ({m['consecutive_failures']} in a row, retrying every {m.get('backoff_s', 0):.0f} s): {m.get('last_error')}"
            elif m.get("last_error"):
                line += f" (last error {m.get('last_error_at')}: {m['last_error'][:200]})"
            out.append(line)
    for d in s.get("damage") or []:
        out.append(f"⚠️ Session {d['session']} damaged: {d['problem']}")
    out.append("\n📜 Last 10 lines:")
    out += s["last_lines"]
    return "\n".join(out)


def _counted(c: dict[str, int]) -> str:
    return ", ".join(f"{n} {k}" for k, n in c.items())


def to_json(s: dict[str, Any]) -> str:
    return json.dumps(s, indent=2, ensure_ascii=False)
