"""What the monitor dashboards show, read from a workspace (local, or a mirrored copy on Drive).

Pure functions, no widgets: each returns plain dicts and pandas DataFrames. Every reader looks
at the newest N files of a folder only, so a refresh costs what it shows, however long the run
has been going. Where the files are, which stages there are and what the gates' thresholds are
come from the layout the run left (``Source``, see ``cvagents.ui.source``); how fresh the
folder is, from ``health`` (``cvagents.ui.health``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from cvagents.config import CoordinationConfig
from cvagents.planning.participation import NOT_COUNTED
from cvagents.rollout.gates import summary_key, thresholds_summary
from cvagents.run import roster
from cvagents.ui.health import Health, HealthState, health, latest_session, stale_after
from cvagents.ui.rollout_view import controller_decisions, deployments_table, gates_table, rollout_events
from cvagents.ui.source import SIM_TIME, Source, default_config, short_time, utc
from cvagents.ui.status import models

if TYPE_CHECKING:
    import pandas as pd  # imported where used: the monitors' import stays light

__all__ = [
    "Health",
    "HealthState",
    "STATUSES",
    "Source",
    "action_table",
    "controller_decisions",
    "rollout_events",
    "SIM_TIME",
    "agents_on_provider",
    "deployments_table",
    "execution_data",
    "executions_table",
    "gates_table",
    "go_no_go",
    "health",
    "latest_session",
    "meeting_history",
    "meetings_table",
    "metrics_history",
    "models_data",
    "participation",
    "per_heartbeat",
    "planning_data",
    "short_time",
    "stale_after",
    "thresholds",
    "tokens_by_agent",
]

# an action whose agent called no tool is one execution row with status "unverified"
STATUSES = ("succeeded", "failed", "refused", "unverified")
# Table columns say which clock a time is on: the run's simulated clock (meeting ids, heartbeats,
# decisions, metrics) or the wall clock (a submission, a file's change)
DONE_AT = "done at (simulated)"
SUBMITTED = "submitted (wall clock)"


# --------------------------------------------------------------------------- planning


def recent_meetings(src: Source, n: int = 10) -> list[dict]:
    """The newest ``n`` meetings' actions files, oldest first."""
    return [d for _, d in src.newest_json(src.paths.planning, "actions_", n)]


def meetings_table(meetings: list[dict]) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for m in reversed(meetings):
        g = m.get("go_no_go") or {}
        rows.append(
            {
                "meeting": m.get("meeting_id"),
                SIM_TIME: short_time(m.get("timestamp")),
                "status": m.get("status"),
                "agents": len(m.get("participants") or []),
                "absent": len(m.get("absent") or {}),
                "actions": m.get("count", len(m.get("actions") or [])),
                "go/no-go": f"{g.get('stage')}: {g.get('decision')}" if g else "—",
                "decisions": "; ".join(d.get("decision", "") for d in m.get("decisions") or []),
            }
        )
    return pd.DataFrame(
        rows, columns=["meeting", SIM_TIME, "status", "agents", "absent", "actions", "go/no-go", "decisions"]
    )


def decisions_table(meeting: dict | None) -> pd.DataFrame:
    import pandas as pd

    rows = [
        {"decision": d.get("decision"), "rationale": d.get("rationale")} for d in (meeting or {}).get("decisions") or []
    ]
    return pd.DataFrame(rows, columns=["decision", "rationale"])


def action_status(src: Source, meeting_id: str, n: int = 60) -> dict[str, dict]:
    """``action_id`` -> the executive's record of it, from heartbeats since that meeting."""
    stamp = meeting_id.removeprefix("meeting_")
    out: dict[str, dict] = {}
    for _, rec in src.newest_json(src.paths.execution, "execution_", n, after=f"execution_{stamp}"):
        for a in rec.get("actions") or []:
            out[a.get("action_id")] = {**a, "heartbeat": rec.get("timestamp")}
    return out


def action_table(src: Source, meetings: list[dict]) -> tuple[str | None, pd.DataFrame]:
    """The plan the executives are working on (the handoff), with each action's status."""
    import pandas as pd

    plan = src.json(src.paths.handoff)
    if not plan:
        plan = next((m for m in reversed(meetings) if m.get("actions")), None)
    cols = ["id", "priority", "owner", "action", "status", "tool", DONE_AT, "estimated", "success criteria"]
    if not plan:
        return None, pd.DataFrame(columns=cols)
    mid = plan.get("meeting_id")
    done = action_status(src, mid) if mid else {}
    rows = []
    for a in plan.get("actions") or []:
        d = done.get(f"{mid}#{a.get('id')}", {})
        rows.append(
            {
                "id": a.get("id"),
                "priority": a.get("priority"),
                "owner": a.get("owner"),
                "action": a.get("action"),
                "status": d.get("status", "pending"),
                "tool": d.get("tool") or "",
                DONE_AT: short_time(d.get("heartbeat")),
                "estimated": a.get("estimated_duration"),
                "success criteria": a.get("success_criteria"),
            }
        )
    return mid, pd.DataFrame(rows, columns=cols)


def participation(meetings: list[dict]) -> pd.DataFrame:
    """Agents × meetings: "✓" took part, what its answer was when it did not count (``echoed``,
    ``empty``, ``cut``), the error when absent, "" when not in that meeting."""
    import pandas as pd

    cols: dict[str, dict[str, str]] = {}
    for m in meetings:
        col = {a: p for a, p in (m.get("participation") or {}).items() if p in NOT_COUNTED}
        col.update({a: "✓" for a in m.get("participants") or []})
        col.update({a: f"absent: {e}" for a, e in (m.get("absent") or {}).items()})
        cols[m.get("meeting_id", "?")] = col
    df = pd.DataFrame(cols).fillna("")
    return df.sort_index() if len(df) else df


def tokens_by_agent(src: Source, meetings: list[dict]) -> tuple[str, pd.DataFrame]:
    """Tokens and cost per agent for the whole run (``reports/costs.json``), or summed over the
    meetings shown when the run wrote no ledger."""
    import pandas as pd

    cols = ["agent", "input_tokens", "output_tokens", "cached_tokens", "cost_usd"]
    costs = src.json(src.paths.costs)
    rows: dict[str, dict] = {}
    if costs and costs.get("usage_by_agent"):
        scope = "whole run"
        for a, u in costs["usage_by_agent"].items():
            rows[a] = {
                "agent": a,
                **{k: u.get(k, 0) for k in cols[1:4]},
                "cost_usd": costs.get("by_agent", {}).get(a, 0.0),
            }
    else:
        scope = f"last {len(meetings)} meetings"
        for m in meetings:
            for a, u in (m.get("usage_by_agent") or {}).items():
                r = rows.setdefault(
                    a, {"agent": a, "input_tokens": 0, "output_tokens": 0, "cached_tokens": 0, "cost_usd": 0.0}
                )
                for k in cols[1:4]:
                    r[k] += u.get(k, 0)
                r["cost_usd"] += (m.get("cost_by_agent") or {}).get(a, 0.0)
    df = pd.DataFrame(list(rows.values()), columns=cols)
    if len(df):
        df = df.sort_values(["input_tokens", "agent"], ascending=[False, True], ignore_index=True)
    return scope, df


def agents_on_provider(session: dict | None) -> str | None:
    """The run's own words (``run.roster.summary``) on which provider serves each agent, from the
    session's ``agents``; None for a session that does not record them (older runs)."""
    agents = (session or {}).get("agents")
    if not isinstance(agents, dict) or not agents:
        return None
    return roster.summary({n: a for n, a in agents.items() if isinstance(a, dict)})


def planning_data(src: Source, *, meetings: int = 10) -> dict[str, Any]:
    ms = recent_meetings(src, meetings)
    plan_id, actions = action_table(src, ms)
    scope, tokens = tokens_by_agent(src, ms)
    _name, session = latest_session(src)
    return {
        "agents": agents_on_provider(session),
        "meetings": meetings_table(ms),
        "latest": ms[-1] if ms else None,
        "decisions": decisions_table(ms[-1] if ms else None),
        "plan_meeting": plan_id,
        "actions": actions,
        "participation": participation(ms),
        "tokens_scope": scope,
        "tokens": tokens,
    }


# --------------------------------------------------------------------------- execution


def executions_table(heartbeats: list[dict]) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for hb in heartbeats:
        for e in hb.get("executions") or []:
            rows.append(
                {
                    SIM_TIME: short_time(hb.get("timestamp")),
                    "heartbeat": hb.get("heartbeat"),
                    "agent": e.get("agent"),
                    "action_id": e.get("action_id"),
                    "tool": e.get("tool") or "—",
                    "status": e.get("status"),
                    "duration_s": e.get("duration_s"),
                    "detail": _detail(e),
                }
            )
    return pd.DataFrame(
        rows, columns=[SIM_TIME, "heartbeat", "agent", "action_id", "tool", "status", "duration_s", "detail"]
    )


def _detail(e: dict) -> str:
    r: dict = e["result"] if isinstance(e.get("result"), dict) else {}
    for k in ("reason", "error"):
        if r.get(k):
            return str(r[k])[:160]
    if r.get("version"):
        return f"{r.get('stage', '')} {r['version']}".strip()
    if r.get("ndcg_at_10") is not None:
        return f"NDCG@10 {r['ndcg_at_10']:.4f}, P95 {r.get('latency_p95_ms')} ms"
    return ""


def per_heartbeat(heartbeats: list[dict]) -> pd.DataFrame:
    """Succeeded / failed / refused tool executions (and unverified actions: no tool) per heartbeat."""
    import pandas as pd

    rows = []
    for hb in heartbeats:
        c = {s: 0 for s in STATUSES}
        for e in hb.get("executions") or []:
            if e.get("status") in c:
                c[e["status"]] += 1
        rows.append({"time": utc(hb.get("timestamp")), "heartbeat": hb.get("heartbeat"), **c})
    return pd.DataFrame(rows, columns=["time", "heartbeat", *STATUSES])


def metrics_history(metrics: dict | None, points: int = 200) -> pd.DataFrame:
    """The newest ``points`` records of ``history``: NDCG@10 with its 95 % CI, P95 latency, SLO
    compliance (a record has the metrics its source measures; the others are NaN)."""
    import pandas as pd

    cols = [
        "time",
        "kind",
        "stage",
        "version",
        "ndcg_at_10",
        "ci_low",
        "ci_high",
        "latency_p95_ms",
        "slo_compliance",
        "p0_incidents",
    ]
    rows = []
    for r in ((metrics or {}).get("history") or [])[-points:]:
        kind = r.get("kind", "evaluation")
        # an evaluation measures NDCG and latency; a traffic replay measures SLO compliance and
        # incidents (and may repeat the evaluation's figures, which are not plotted twice)
        measured = {} if kind == "traffic" else r
        ci = measured.get("ndcg_at_10_ci95") or [None, None]
        rows.append(
            {
                "time": utc(r.get("time") or r.get("last_time")),
                "kind": kind,
                "stage": r.get("stage"),
                "version": r.get("version"),
                "ndcg_at_10": measured.get("ndcg_at_10"),
                "ci_low": ci[0],
                "ci_high": ci[1],
                "latency_p95_ms": measured.get("latency_p95_ms"),
                "slo_compliance": r.get("slo_compliance"),
                "p0_incidents": r.get("p0_incidents"),
            }
        )
    df = pd.DataFrame(rows, columns=cols)
    return df.sort_values("time", kind="stable", ignore_index=True) if len(df) else df


def models_data(src: Source, metrics: dict | None = None) -> dict[str, Any]:
    """The champion in production and every candidate with its status (as ``cvagents status``
    shows them): ``{"champion": {name, version, sha256} | None, "candidates": DataFrame}``. A
    folder still being mirrored shows what has arrived."""
    import pandas as pd

    cols = ["candidate", "status", "sha256", "adapter", "source", SUBMITTED]
    try:
        m = models(src.ws, src.config, metrics)
    except (OSError, ValueError) as e:  # a half-copied file: the next refresh reads it whole
        src.missing.append(f"models ({type(e).__name__})")
        m = {"champion": None, "candidates": []}
    rows = [
        {
            "candidate": c["name"],
            "status": c["describe"],
            "sha256": c["sha256"][:12],
            "adapter": c["adapter"],
            "source": (c.get("source") or {}).get("kind"),
            SUBMITTED: " ".join(x for x in (short_time(c.get("time")), c.get("submitted_by") or "") if x),
        }
        for c in m["candidates"]
    ]
    return {"champion": m["champion"], "candidates": pd.DataFrame(rows, columns=cols)}


def go_no_go(meetings: list[dict]) -> pd.DataFrame:
    import pandas as pd

    rows = [
        {
            "meeting": m.get("meeting_id"),
            SIM_TIME: short_time(m.get("timestamp")),
            "stage": g.get("stage"),
            "decision": g.get("decision"),
            "reason": g.get("reason"),
        }
        for m in reversed(meetings)
        if (g := m.get("go_no_go"))
    ]
    return pd.DataFrame(rows, columns=["meeting", SIM_TIME, "stage", "decision", "reason"])


def thresholds(rollout: dict | None, cfg: CoordinationConfig | None = None) -> dict[str, Any]:
    """The gate thresholds to draw: the run's config (``cfg``, default: the built-in one), then
    the state's ``thresholds``, then what the current stage's gates say (``">= 0.72"``), which
    is what was applied."""
    out = {
        **thresholds_summary(cfg or default_config()),
        **{k: v for k, v in ((rollout or {}).get("thresholds") or {}).items() if not isinstance(v, dict)},
    }
    for g in ((rollout or {}).get("current") or {}).get("gates") or []:
        key = summary_key(g.get("metric") or g.get("gate") or "")
        words = str(g.get("threshold") or "").split()
        if key and len(words) >= 2:
            try:
                out[key] = float(words[1])
            except ValueError:
                pass
    return out


def execution_data(
    src: Source, *, heartbeats: int = 24, points: int = 200, meetings: int = 5, log_lines: int = 12
) -> dict[str, Any]:

    p = src.paths
    hbs = [d for _, d in src.newest_json(p.execution, "execution_", heartbeats)]
    execs = executions_table(hbs)
    rollout = src.json(p.rollout_state)
    metrics = src.json(p.metrics)
    logs = src.names(p.execution, "deployments_", ".log")
    controller = src.json(p.controller) if src.path(p.controller).exists() or src.listed(p.controller) else None
    return {
        "heartbeats": len(hbs),
        "executions": execs,
        "counts": {s: int((execs["status"] == s).sum()) for s in STATUSES},
        "per_heartbeat": per_heartbeat(hbs),
        "metrics": metrics_history(metrics, points),
        "latest_metrics": (metrics or {}).get("latest"),
        "rollout": rollout,
        "stages": src.stages,
        "thresholds": thresholds(rollout, src.config),
        "deployments": deployments_table(rollout, controller, src.config),
        "events": rollout_events(src),
        "decisions": controller_decisions(src, rollout),
        "models": models_data(src, metrics),
        "paused": ((rollout or {}).get("rollout") or {}).get("paused"),
        "deploy_log": src.tail_lines(f"{p.execution}/{logs[-1]}", 10) if logs else [],
        "gates": gates_table(rollout),
        "go_no_go": go_no_go(recent_meetings(src, meetings)),
        "log_tail": src.tail_lines(p.log, log_lines),
    }


def meeting_history(workspace: str | os.PathLike) -> pd.DataFrame:
    """Every meeting of the run, oldest first (the unified notebook's complete history; unlike
    the dashboards this reads them all)."""
    src = Source(workspace)
    ms = [d for _, d in src.newest_json(src.paths.planning, "actions_", 10**9)]
    return meetings_table(ms).iloc[::-1].reset_index(drop=True)
