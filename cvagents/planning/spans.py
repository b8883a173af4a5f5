"""The span of a planning meeting (``Meeting.hold``); its agent calls nest under it."""

from __future__ import annotations

from typing import Any

from cvagents import tracing


def _start(meeting: Any, meeting_id: str, number: int, *_: Any, **__: Any) -> dict[str, Any]:
    return {
        "cvagents.meeting_id": meeting_id,
        "cvagents.meeting": number,
        "cvagents.rounds": meeting.rounds,
        "cvagents.agents": sorted(meeting.teams.planning),
    }


def _end(outcome: Any) -> dict[str, Any]:
    failed = outcome.status != "completed"
    return {
        "cvagents.status": outcome.status,
        "cvagents.participants": outcome.participants,
        "cvagents.absent": sorted(outcome.absent),
        "cvagents.actions": outcome.handoff.count if outcome.handoff else 0,
        "error.type": outcome.status if failed else None,
        "cvagents.error": "; ".join(outcome.notes) if failed else None,
    }


meeting = tracing.traced("cvagents.meeting", _start, _end)
