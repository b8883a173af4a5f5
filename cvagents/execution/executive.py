"""The executive heartbeat: take the next actions from the handoff, HIGH → MEDIUM → LOW, and
let each action's owner carry it out with native tool calls.

One action is a bounded loop: model → tool calls → the registry runs them (or refuses) →
results back to the model → ... until the model answers without a tool call. The action's
status comes from what the tools did, not from what the model says about it.

In a run, an action's tool calls and model answers go through a ``Recording`` (the run's
recorder: every tool call journaled, and on resume answered from the journal); without one,
the registry runs the tools directly and every model is asked.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from cvagents.clock import stopwatch
from cvagents.execution import spans
from cvagents.execution.tools import ToolContext, ToolOutcome, ToolRegistry, ToolStatus
from cvagents.llm.base import LLMRequest, LLMResult, Message
from cvagents.planning.handoff import HandoffAction, action_key, by_priority
from cvagents.planning.meeting import prompt_hash
from cvagents.planning.team import Agent
from cvagents.secrets import redact, redact_value

log = logging.getLogger("cvagents.execution.executive")

RESULT_MAX_CHARS = 4000


class ActionStatus(StrEnum):
    """How a handoff action ended (the ``status`` of an ``action_finished`` record)."""

    SUCCEEDED = "succeeded"  # its last tool call succeeded (or, calling none, the model reported success)
    FAILED = "failed"  # its last tool call failed, the model stopped answering, or it ran out of steps
    REFUSED = "refused"  # a tool call was refused (not allowed, bad arguments): final, never retried as-is


class Recording(Protocol):
    """One action's tool calls and model answers as a run records them."""

    def call(self, ctx: ToolContext, name: str, arguments: Any) -> ToolOutcome:
        """Run (or replay) one tool call."""
        ...

    def response(self, agent: str, step: int, prompt_hash: str) -> LLMResult | None:
        """The answer the journal already holds for this prompt, if any (never paid for twice)."""
        ...


class _Direct:
    """No recording: the registry runs every call, every model is asked."""

    def __init__(self, registry: ToolRegistry):
        self.registry = registry

    def call(self, ctx: ToolContext, name: str, arguments: Any) -> ToolOutcome:
        outcome = self.registry.call(ctx, name, arguments)
        return dataclasses.replace(outcome, result=redact_value(outcome.result))

    def response(self, agent: str, step: int, prompt_hash: str) -> LLMResult | None:
        return None


@dataclass
class ActionRun:
    key: str
    action: HandoffAction
    agent: str
    status: ActionStatus
    outcomes: list[ToolOutcome] = field(default_factory=list)
    final_text: str = ""
    error: str | None = None
    duration_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        last = self.outcomes[-1] if self.outcomes else None
        reason = None
        for o in self.outcomes:
            if o.status == ToolStatus.REFUSED:
                reason = o.result.get("reason")
        return {
            "action_id": self.key,
            "id": self.action.id,
            "action": self.action.action,
            "owner": self.action.owner,
            "priority": self.action.priority,
            "estimated_duration": self.action.estimated_duration,
            "success_criteria": self.action.success_criteria,
            "status": self.status,
            "tool": last.tool if last else None,
            "error": self.error,
            "reason": reason,
        }


def _result_text(o: ToolOutcome) -> str:
    text = json.dumps({"status": o.status, **o.result}, default=str)
    return text if len(text) <= RESULT_MAX_CHARS else text[:RESULT_MAX_CHARS] + "…"


def redacted_answer(res: LLMResult) -> LLMResult:
    """``res`` with every key in its text and tool-call arguments redacted: what is journaled,
    logged, reported and sent on is this, never the raw answer."""
    calls = tuple(dataclasses.replace(c, arguments=redact_value(c.arguments)) for c in res.tool_calls)
    return dataclasses.replace(res, text=redact(res.text), tool_calls=calls)


def action_status(outcomes: list[ToolOutcome], final_text: str) -> tuple[ActionStatus, str | None]:
    """A refusal is final; otherwise the last tool call decides; with no tool call, the
    model's own RESULT line does."""
    refused = [o for o in outcomes if o.status == ToolStatus.REFUSED]
    if refused:
        return ActionStatus.REFUSED, refused[0].result.get("reason")
    if outcomes:
        last = outcomes[-1]
        return (ActionStatus.SUCCEEDED, None) if last.ok else (ActionStatus.FAILED, last.result.get("error"))
    first = final_text.strip().splitlines()[0] if final_text.strip() else ""
    if first.startswith("RESULT: succeeded"):
        return ActionStatus.SUCCEEDED, None
    return ActionStatus.FAILED, first or "no tool was called and no result was given"


class Executive:
    def __init__(
        self,
        agents: dict[str, Agent],
        registry: ToolRegistry,
        make_context: Callable[[str], ToolContext],
        *,
        max_tool_steps: int = 6,
        max_tokens: int = 1500,
        record: Callable[[str, dict], Any] | None = None,
    ):
        self.agents = agents
        self.registry = registry
        self.make_context = make_context
        self.max_tool_steps = max_tool_steps
        self.max_tokens = max_tokens
        self.record = record or (lambda kind, data: None)  # journals each agent response

    def next_actions(
        self, actions: list[HandoffAction], meeting_id: str, finished: set[str], n: int
    ) -> list[HandoffAction]:
        return [a for a in by_priority(actions) if action_key(meeting_id, a.id) not in finished][:n]

    @spans.action
    def carry_out(
        self, action: HandoffAction, meeting_id: str, state: dict, recording: Recording | None = None
    ) -> ActionRun:
        """Let the action's owner carry it out; its tool calls and answers through ``recording``."""
        sw = stopwatch()
        rec = recording or _Direct(self.registry)
        key = action_key(meeting_id, action.id)
        agent = self.agents[action.owner]
        ctx = dataclasses.replace(self.make_context(key), agent=agent.name)
        run = ActionRun(key, action, agent.name, ActionStatus.FAILED)
        brief = {k: state.get(k) for k in ("stages", "current", "next_stage", "artifacts", "thresholds")}
        messages: list[Message] = [
            Message(
                "user",
                redact(
                    f"# Action {action.id} ({action.priority} priority) from {meeting_id}\n{action.action}\n\n"
                    f"Success criteria: {action.success_criteria}\n\n## Rollout state\n```json\n"
                    f"{json.dumps(brief, indent=1, sort_keys=True)}\n```\n\n"
                    "Carry the action out with your tools, then give your RESULT line."
                ),
            )
        ]
        specs = self.registry.specs()
        final = ""
        for step in range(self.max_tool_steps):
            req = LLMRequest(
                agent=agent.name,
                role=agent.config.role,
                purpose="action",
                system=agent.system_prompt,
                messages=tuple(messages),
                tools=specs,
                max_tokens=agent.config.max_tokens or self.max_tokens,
                context={"state": state, "action": action.model_dump(), "action_id": key},
            )
            h = prompt_hash(req)
            res = rec.response(agent.name, step, h)
            if res is None:
                try:
                    res = redacted_answer(agent.provider.complete(req))
                except Exception as e:
                    run.error = redact(f"{agent.name} did not answer: {e}")
                    break
                self.record(
                    "agent_response",
                    {
                        "action_id": key,
                        "agent": agent.name,
                        "purpose": "action",
                        "step": step,
                        "prompt_hash": h,
                        **res.as_dict(),
                    },
                )
            if not res.tool_calls:
                final = res.text
                break
            messages.append(Message("assistant", res.text, tool_calls=res.tool_calls))
            for call in res.tool_calls:
                outcome = rec.call(ctx, call.name, call.arguments)
                run.outcomes.append(outcome)
                if not outcome.replayed:  # a result replayed from the journal was logged when it was run
                    args = ", ".join(f"{k}={v}" for k, v in outcome.arguments.items())
                    if outcome.ok:
                        log.info("[TOOL] %s(%s) ✅", outcome.tool, args)
                    else:
                        why = outcome.result.get("reason") or outcome.result.get("error")
                        log.info("[TOOL] %s(%s) ❌ %s: %s", outcome.tool, args, outcome.status, why)
                messages.append(
                    Message(
                        "tool", _result_text(outcome), tool_call_id=call.id, name=call.name, is_error=not outcome.ok
                    )
                )
        else:
            run.error = f"stopped after {self.max_tool_steps} tool steps without a final answer"
        run.final_text = final
        status, err = action_status(run.outcomes, final)
        if run.error and status == ActionStatus.SUCCEEDED:
            status = ActionStatus.FAILED  # the model stopped answering or ran out of steps mid-action
        run.status, run.error = status, run.error or err
        run.duration_s = sw.elapsed()
        if status != ActionStatus.SUCCEEDED and not _failure_logged(run):
            log.info("[TOOL] %s for %s ❌ %s: %s", agent.name, key, status, run.error)
        return run


def _failure_logged(run: ActionRun) -> bool:
    """Whether the tool call that decided the action's failure wrote its own ❌ line in this run
    (not when the agent never answered, called no tool, or ran out of steps, nor when the call
    was replayed from the journal: then the action's own ❌ line says why)."""
    if run.status == ActionStatus.REFUSED:
        deciding = next((o for o in run.outcomes if o.status == ToolStatus.REFUSED), None)
    elif run.outcomes and not run.outcomes[-1].ok and run.error == run.outcomes[-1].result.get("error"):
        deciding = run.outcomes[-1]
    else:
        deciding = None
    return deciding is not None and not deciding.replayed
