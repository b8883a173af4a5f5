"""The files under ``reports/``, rendered from the records the journal holds.

Each writer takes the same dict that was journaled (``meeting_completed``,
``heartbeat_completed``), so every report can be rebuilt from the journal alone (the rollout
controller's decisions are rendered by ``cvagents.rollout.decisions`` and
``cvagents.rollout.deployments_log`` from their journaled records).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cvagents.durability.atomic import atomic_write_json, atomic_write_text
from cvagents.execution.tools import default_registry
from cvagents.planning.handoff import Handoff, write_handoff
from cvagents.rollout import deployments_log
from cvagents.workspace import Workspace


def meeting_record(
    outcome,
    timestamp: str,
    cost_by_agent: dict[str, float] | None = None,
    fallbacks: dict[str, str] | None = None,
    saved_by_agent: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Everything the meeting's reports need, JSON-ready (this is what is journaled).
    ``fallbacks``: agents on the offline provider instead of their configured one, with why
    (``cvagents.run.roster``); those of this meeting are kept. ``saved_by_agent``: what prompt
    caching saved on each agent's calls."""
    syn = outcome.synthesis
    spoke = {s.agent for s in outcome.speeches} | set(outcome.participants) | set(outcome.absent)
    return {
        "meeting_id": outcome.meeting_id,
        "number": outcome.number,
        "timestamp": timestamp,
        "status": outcome.status,
        "agenda": outcome.agenda,
        "speeches": [
            {
                "agent": s.agent,
                "purpose": s.purpose,
                "text": s.text,
                "provider": s.provider,
                "model": s.model,
                "usage": s.usage.as_dict(),
                "error": s.error,
                "stop_reason": s.stop_reason,
                "participation": s.participation.value,
                "participation_note": s.participation_note,
            }
            for s in outcome.speeches
        ],
        "participants": outcome.participants,
        "participation": outcome.participation_by_agent(),
        "absent": outcome.absent,
        "notes": outcome.notes,
        "no_plan_reason": outcome.no_plan_reason,
        "synthesis": syn.model_dump() if syn else None,
        "handoff": outcome.handoff.model_dump() if outcome.handoff else None,
        "duration_s": round(outcome.duration_s, 3),
        "cost_by_agent": cost_by_agent or {},
        "saved_by_agent": saved_by_agent or {},
        "fallbacks": {a: why for a, why in sorted((fallbacks or {}).items()) if a in spoke},
    }


def _title(agent: str) -> str:
    return agent.replace("_", " ").title()


def render_transcript(rec: dict[str, Any]) -> str:
    out = [
        f"# Planning meeting transcript — {rec['meeting_id']}",
        "",
        f"- Time: {rec['timestamp']} (simulated; the meeting id is this start time)",
        f"- Meeting number: {rec['number']}",
        f"- Status: {rec['status']}",
        "",
    ]
    out += ["## Moderator — agenda", "", rec["agenda"], ""]
    for s in rec["speeches"]:
        head = f"## {_title(s['agent'])} — {s['purpose']} — {s['provider']} provider ({s['model']})"
        if s["error"]:
            out += [head, "", f"_Absent: {s['error']}_", ""]
            continue
        u = s["usage"]
        out += [
            head,
            "",
            f"_tokens: {u['input_tokens']} in, {u['output_tokens']} out, {u['cached_tokens']} cached_",
            "",
            *(
                [f"_⚠️ Not counted as taking part: {s['participation_note']}_", ""]
                if s.get("participation_note")
                else []
            ),
            s["text"].rstrip(),
            "",
        ]
    for n in rec["notes"]:
        out.append(f"> {n}")
    return "\n".join(out).rstrip() + "\n"


def _actions_table(actions: list[dict]) -> list[str]:
    rows = ["| id | priority | owner | action | estimated | success criteria |", "|---|---|---|---|---|---|"]
    rows += [
        f"| {a['id']} | {a['priority']} | {a['owner']} | {a['action']} | {a['estimated_duration']} | {a['success_criteria']} |"
        for a in actions
    ]
    return rows


def render_summary(rec: dict[str, Any]) -> str:
    out = [
        f"# Meeting summary — {rec['meeting_id']}",
        "",
        f"- Time: {rec['timestamp']} (simulated; the meeting id is this start time)",
        f"- Status: {rec['status']}",
        f"- Duration: {rec['duration_s']} s (real time)",
    ]
    out.append(f"- Agents participated: {len(rec['participants'])} ({', '.join(rec['participants'])})")
    if rec["absent"]:
        out.append("- Absent: " + "; ".join(f"{a}: {e}" for a, e in rec["absent"].items()))
    if not_counted := sorted((s for s in rec["speeches"] if s.get("participation_note")), key=lambda s: s["agent"]):
        out.append(
            "- Not counted as taking part: " + "; ".join(f"{s['agent']} ({s['participation']})" for s in not_counted)
        )
    providers = sorted({f"{s['provider']} ({s['model']})" for s in rec["speeches"] if not s["error"]})
    out.append(f"- Providers that spoke: {', '.join(providers)}")
    fell = rec.get("fallbacks") or {}  # records journaled before fallbacks were recorded have none
    if fell:
        out.append(
            f"- ⚠️ On the offline provider instead of their configured one ({len(fell)}): "
            + "; ".join(f"{a}: {why}" for a, why in fell.items())
        )
    syn = rec["synthesis"]
    if syn:
        out += ["", "## Decisions", ""] + [f"- **{d['decision']}** — {d['rationale']}" for d in syn["decisions"]]
        g = syn.get("go_no_go")
        if g:
            out += ["", f"**Go/no-go for {g['stage']}: {g['decision'].upper()}** — {g['reason']}"]
        out += ["", "## Risks", ""] + ([f"- {r}" for r in syn["risks"]] or ["- none raised"])
        out += ["", "## V1 → V2 cross-pollination", ""] + [f"- {c}" for c in syn["cross_pollination"]]
    if rec["handoff"]:
        out += ["", f"## Actions ({rec['handoff']['count']})", ""] + _actions_table(rec["handoff"]["actions"])
    else:
        out += ["", "## Actions", "", "No valid synthesis: the previous handoff stays in place."]
    out += [
        "",
        "## Tokens and cost per agent",
        "",
        "| agent | input | output | cached | cost (USD) | saved by caching (USD) |",
        "|---|---|---|---|---|---|",
    ]
    totals = {a: [u["input_tokens"], u["output_tokens"], u["cached_tokens"]] for a, u in usage_by_agent(rec).items()}
    cost, saved = rec.get("cost_by_agent", {}), rec.get("saved_by_agent", {})
    for agent, (i, o, c) in sorted(totals.items()):
        out.append(f"| {agent} | {i} | {o} | {c} | {cost.get(agent, 0.0):.6f} | {saved.get(agent, 0.0):.6f} |")
    i, o, c = (sum(t[k] for t in totals.values()) for k in range(3))
    out.append(f"| **total** | {i} | {o} | {c} | {sum(cost.values()):.6f} | {sum(saved.values()):.6f} |")
    if rec["notes"]:
        out += ["", "## Notes", ""] + [f"- {n}" for n in rec["notes"]]
    return "\n".join(out) + "\n"


def actions_file(rec: dict[str, Any]) -> dict[str, Any]:
    syn = rec["synthesis"] or {}
    h = rec["handoff"] or {"actions": [], "count": 0}
    return {
        "meeting_id": rec["meeting_id"],
        "timestamp": rec["timestamp"],
        "status": rec["status"],
        "decisions": syn.get("decisions", []),
        "go_no_go": syn.get("go_no_go"),
        "risks": syn.get("risks", []),
        "cross_pollination": syn.get("cross_pollination", []),
        "actions": h["actions"],
        "count": h["count"],
        "participants": rec["participants"],
        "participation": rec.get("participation", {}),
        "absent": rec["absent"],
        "usage_by_agent": usage_by_agent(rec),
        "cost_by_agent": rec.get("cost_by_agent", {}),
    }


def usage_by_agent(rec: dict[str, Any]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for s in rec["speeches"]:
        t = out.setdefault(s["agent"], {"input_tokens": 0, "output_tokens": 0, "cached_tokens": 0})
        for k in t:
            t[k] += s["usage"][k]
    return out


def write_meeting(ws: Workspace, rec: dict[str, Any]) -> None:
    mid = rec["meeting_id"]
    atomic_write_text(ws.planning_dir / f"transcript_{mid}.md", render_transcript(rec))
    atomic_write_text(ws.planning_dir / f"summary_{mid}.md", render_summary(rec))
    atomic_write_json(ws.planning_dir / f"actions_{mid}.json", actions_file(rec))
    if rec["handoff"]:
        write_handoff(ws.handoff_file, Handoff.model_validate(rec["handoff"]))


def write_execution(ws: Workspace, rec: dict[str, Any]) -> Path:
    path = ws.execution_dir / f"execution_{rec['heartbeat_id']}.json"
    atomic_write_json(path, rec)
    return path


def deployment_lines(rec: dict[str, Any]) -> list[str]:
    """A heartbeat's lines of the deployments log: its calls of tools flagged ``deployment_log``."""
    registry = default_registry()
    lines = []
    for e in rec["executions"]:
        tool = registry.get(e["tool"]) if e["tool"] else None
        if tool is not None and tool.deployment_log:
            lines.append(
                deployments_log.line(
                    rec["timestamp"],
                    e["tool"],
                    e["arguments"].get("stage"),
                    e["action_id"],
                    e["status"] == "succeeded",
                    e["result"],
                )
            )
    return lines


def deployments_log_path(ws: Workspace, rec: dict[str, Any]) -> Path:
    return deployments_log.log_path(ws.execution_dir, rec["timestamp"])


def append_deployments_log(ws: Workspace, rec: dict[str, Any]) -> None:
    """Add the heartbeat's lines to the day's log (not twice, when a heartbeat's reports are
    written again after a crash)."""
    deployments_log.append(ws.execution_dir, rec["timestamp"], deployment_lines(rec))


def write_costs(ws: Workspace, ledger) -> None:
    """``reports/costs.json``: what the run has spent, for ``cvagents status`` and the monitors."""
    usage = {a: u.as_dict() for a, u in ledger.usage_by_agent().items()}
    atomic_write_json(
        ws.costs_file,
        {
            "total_usd": ledger.spent(),
            "cached_tokens": ledger.cached_tokens(),  # input tokens read from the providers' prompt caches
            "saved_usd": ledger.saved(),  # what those cost less than at the base input price
            "saved_by_agent": {a: ledger.saved(agent=a) for a in ledger.totals_by_agent()},
            "by_agent": ledger.totals_by_agent(),
            "by_meeting": ledger.totals_by_meeting(),
            "by_day": ledger.totals_by_day(),
            "usage_by_agent": usage,
            "downgrades": [d.as_dict() for d in ledger.downgrades()],
            "unpriced_models": ledger.unpriced_models(),
        },
    )
