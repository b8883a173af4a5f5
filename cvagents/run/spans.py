"""The spans of a run: the run itself (``Coordinator.run``), the root of its trace, and each
executive heartbeat (``Coordinator.heartbeat``); the meetings' spans come from
``cvagents.planning.spans``. The attributes at the end come from the step's journaled result."""

from __future__ import annotations

from typing import Any

from cvagents import tracing


def _run_start(coordinator: Any) -> dict[str, Any]:
    return {"cvagents.session_id": coordinator.session_id, "cvagents.resuming": coordinator.resuming}


def _run_end(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "cvagents.status": result["status"],
        "cvagents.meetings": result["meetings"],
        "cvagents.heartbeats": result["heartbeats"],
    }


def _heartbeat_start(coordinator: Any, pending: Any = None) -> dict[str, Any]:
    return {"cvagents.resumed": pending is not None}


def _heartbeat_end(rec: dict[str, Any]) -> dict[str, Any]:
    return {
        "cvagents.heartbeat": rec["heartbeat"],
        "cvagents.heartbeat_id": rec["heartbeat_id"],
        "cvagents.meeting_id": rec.get("meeting_id"),
        "cvagents.actions": len(rec.get("actions") or ()),
        "cvagents.remaining": rec.get("remaining"),
        "cvagents.handoff_error": rec.get("handoff_error"),
    }


run = tracing.traced("cvagents.run", _run_start, _run_end)
heartbeat = tracing.traced("cvagents.heartbeat", _heartbeat_start, _heartbeat_end)
