"""The recorder: the bookkeeping around every tool call of a run, the same for every tool.

Each call is journaled as ``tool_started`` (with the tool's own snapshot of the world before it,
its ``before`` hook) before it runs and as ``tool_call`` after, with crash points on both sides.
Its result is normalised through JSON, as the journal holds it, so a result replayed after a
crash reads the same to the model and in the reports.

On resume, an action that was under way is carried out again with its journaled data
(``ActionReplay``): a call the journal shows finished is answered from the journal, not run; a
call that was started but not finished is first checked against the world by the tool's
``repair`` hook (which undoes what is half done), then run again (tools are idempotent on the
action id), and its answer is given as the interrupted call would have given it (the tool's
``recovered`` hook). A replay that diverges from the journal (another tool or arguments at the
same position) stops replaying and runs the rest for real, with a warning.

The replay state of one action lives in its ``ActionRecording``, made per action.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from typing import Any

from cvagents.durability.crashpoints import crashpoint
from cvagents.execution.tools import ToolContext, ToolOutcome, ToolRegistry, ToolStatus
from cvagents.execution.tools.registry import RERUN
from cvagents.llm.base import LLMResult, ToolCall, ToolSpec, Usage
from cvagents.run.recovery import ActionReplay
from cvagents.secrets import redact_value

__all__ = ["Recorder", "ActionRecording", "result_from_dict", "outcome_from_record"]

log = logging.getLogger("cvagents.run")

Record = Callable[[str, dict], Any]


def result_from_dict(d: dict) -> LLMResult:
    """An ``LLMResult`` back from its journaled ``as_dict()``."""
    return LLMResult(
        text=d.get("text", ""),
        tool_calls=tuple(ToolCall(c["id"], c["name"], c.get("arguments") or {}) for c in d.get("tool_calls") or ()),
        usage=Usage(**(d.get("usage") or {})),
        model=d.get("model", ""),
        provider=d.get("provider", ""),
        latency_s=d.get("latency_s", 0.0),
        stop_reason=d.get("stop_reason", ""),
    )


def outcome_from_record(d: dict) -> ToolOutcome:
    """A ``tool_call`` record's outcome, marked as replayed."""
    return ToolOutcome(
        d["tool"],
        d.get("arguments") or {},
        ToolStatus(d["status"]),
        d.get("result") or {},
        d.get("duration_s", 0.0),
        replayed=True,
        recovered_from_text=bool(d.get("recovered_from_text")),
    )


def _as_journaled(result: dict[str, Any]) -> dict[str, Any]:
    """The result as the journal will hold it (JSON, keys sorted, every key redacted)."""
    return redact_value(json.loads(json.dumps(result, sort_keys=True, default=str)))


class Recorder:
    """Wraps a tool registry for a run: ``action(key, replay)`` gives the one action's recording."""

    def __init__(self, registry: ToolRegistry, record: Record):
        self.registry = registry
        self.record = record

    def specs(self) -> tuple[ToolSpec, ...]:
        return self.registry.specs()

    def action(self, key: str, replay: ActionReplay | None = None) -> ActionRecording:
        return ActionRecording(self.registry, self.record, key, replay)


class ActionRecording:
    """One action's tool calls, journaled; with ``replay`` (the action was under way when the
    run stopped), its journaled calls and answers are given back instead of run or asked again."""

    def __init__(self, registry: ToolRegistry, record: Record, key: str, replay: ActionReplay | None = None):
        self.registry = registry
        self.record = record
        self.key = key
        self.replay = replay
        self._index = 0  # the position of the next call in the action
        self._calls: list[tuple[str, dict]] = []  # (tool, arguments) called so far

    def response(self, agent: str, step: int, prompt_hash: str) -> LLMResult | None:
        if self.replay is None:
            return None
        d = self.replay.responses.take((agent, step, prompt_hash))
        return result_from_dict(d) if d is not None else None

    def call(self, ctx: ToolContext, name: str, arguments: Any, *, from_text: bool = False) -> ToolOutcome:
        i = self._index
        self._index += 1
        args = arguments if isinstance(arguments, dict) else {"_raw": arguments}
        r = self.replay
        if r is not None and i < len(r.tools_done):
            d = r.tools_done[i]
            if d.get("tool") == name and d.get("arguments") == args:
                return outcome_from_record(d)
            log.warning(
                "replay of %s diverged at tool call %d (%s, journal says %s): running it",
                self.key,
                i,
                name,
                d.get("tool"),
            )
            self.replay = r = None
        tool = self.registry.get(name)
        started = r.tools_started[i] if r is not None and i < len(r.tools_started) else None
        inflight = started is not None and started.get("tool") == name and started.get("arguments") == args
        if started is not None and inflight:
            before = started.get("world") or {}
            found = tool.repair_world(ctx, args, before) if tool else RERUN
            log.info("🔁 %s of %s was under way when the run stopped: %s", name, self.key, found)
            self.record("tool_recovered", {"action_id": self.key, "index": i, "tool": name, "found": found})
        else:
            before = redact_value(tool.world_before(ctx, args)) if tool else {}
            self.record(
                "tool_started", {"action_id": self.key, "index": i, "tool": name, "arguments": args, "world": before}
            )
        crashpoint(f"tool_before:{name}")
        outcome = self.registry.call(ctx, name, arguments)
        first_call = (name, args) not in self._calls
        self._calls.append((name, args))
        if tool and (inflight or (first_call and outcome.result.get("already_done"))):
            # Done in the world before the journal knew (a crash, or a mirror whose journal copy
            # lags its files): answer as the call that did it answered.
            outcome = tool.recovered_outcome(ctx, outcome, before)
        outcome = dataclasses.replace(outcome, result=_as_journaled(outcome.result), recovered_from_text=from_text)
        crashpoint(f"tool_after:{name}")
        self.record("tool_call", {"action_id": self.key, "agent": ctx.agent, **outcome.as_dict()})
        return outcome
