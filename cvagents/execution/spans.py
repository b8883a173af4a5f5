"""The spans of the executive's work: an action (``Executive.carry_out``), and each tool call
in it (``ToolRegistry.call``, named ``execute_tool <tool>`` as the GenAI conventions name it).
A failed or refused action or tool call is a failed span (``error.type``: its status)."""

from __future__ import annotations

from typing import Any

from cvagents import tracing
from cvagents.planning.handoff import action_key


def _action_start(executive: Any, action: Any, meeting_id: str, *_: Any, **__: Any) -> dict[str, Any]:
    return {
        "cvagents.action_id": action_key(meeting_id, action.id),
        "gen_ai.agent.name": action.owner,
        "cvagents.agent": action.owner,
        "cvagents.priority": action.priority,
        "cvagents.action": action.action,
    }


def _action_end(run: Any) -> dict[str, Any]:
    failed = run.status != "succeeded"
    return {
        "cvagents.status": run.status,
        "cvagents.tool_calls": len(run.outcomes),
        "error.type": run.status if failed else None,
        "cvagents.error": run.error,
    }


def _tool_name(registry: Any, ctx: Any, name: str, *_: Any, **__: Any) -> str:
    return f"execute_tool {name}"


def _tool_start(registry: Any, ctx: Any, name: str, arguments: Any, *_: Any, **__: Any) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
        "cvagents.action_id": ctx.action_key,
        "cvagents.agent": ctx.agent or None,
        "cvagents.tool.arguments": arguments,
    }


def _tool_end(outcome: Any) -> dict[str, Any]:
    return {
        "cvagents.tool.status": outcome.status,
        "error.type": None if outcome.ok else outcome.status,
        "cvagents.error": None if outcome.ok else outcome.result.get("error") or outcome.result.get("reason"),
    }


action = tracing.traced("cvagents.action", _action_start, _action_end)
tool_call = tracing.traced(_tool_name, _tool_start, _tool_end)
