"""The one line a meeting leaves for the next ones ("Earlier meetings" in their prompt).

It says what the meeting concluded, from its journaled ``meeting_completed`` record: the
decisions; the go/no-go; when it decided nothing in words, the first actions it planned; when it
produced no plan, that it did not and why. Never an empty line: a synthesis with no decisions
still planned (or declined to plan) something.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ACTIONS_NAMED", "meeting_line"]

ACTIONS_NAMED = 3  # actions a line names when the meeting recorded no decision
_PART_CHARS = 240  # each part of the line is clipped to this, so the line stays a line


def _clip(text: str, n: int = _PART_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _go_no_go(syn: dict[str, Any]) -> str | None:
    g = syn.get("go_no_go")
    if not g:
        return None
    reason = f" ({_clip(g['reason'], 120)})" if g.get("reason") else ""
    return f"go/no-go for {g['stage']}: {g['decision']}{reason}"


def _actions(handoff: dict[str, Any] | None, named: bool) -> str:
    actions = (handoff or {}).get("actions") or []
    if not actions:
        return "no actions planned"
    if not named:
        return f"{len(actions)} actions"
    shown = "; ".join(_clip(a["action"], 80) for a in actions[:ACTIONS_NAMED])
    more = len(actions) - ACTIONS_NAMED
    return f"{len(actions)} actions: {shown}" + (f"; and {more} more" if more > 0 else "")


def meeting_line(rec: dict[str, Any]) -> str:
    """``<meeting id>: <what it concluded>`` for the meeting record ``rec``."""
    mid = rec["meeting_id"]
    if rec["status"] != "completed":
        why = rec.get("no_plan_reason") or "no synthesis passed the action schema"
        return f"{mid}: failed, no new plan (the previous one stands): {_clip(why)}"
    syn = rec.get("synthesis") or {}
    decisions = "; ".join(d["decision"] for d in syn.get("decisions") or [])
    parts = [f"decided {_clip(decisions)}"] if decisions else []
    if g := _go_no_go(syn):
        parts.append(g)
    parts.append(_actions(rec.get("handoff"), named=not decisions))
    return f"{mid}: " + "; ".join(parts)
