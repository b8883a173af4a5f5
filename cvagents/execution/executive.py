"""The executive heartbeat: take the next actions from the handoff, HIGH → MEDIUM → LOW, and
let each action's owner carry it out with native tool calls.

One action is a bounded loop: model → tool calls → the registry runs them (or refuses) →
results back to the model → ... until the model answers without a tool call. The action's
status comes from what the tools did, never from what the model says about it
(``action_status``): an action whose agent called no tool is ``unverified``, and the agent's
final words travel on only as a claim, labelled as such (``ActionRun.claim``).

A tool call the model wrote as JSON text instead of a native call is detected and said plainly;
an agent configured with ``tool_call_parsing: lenient`` has it parsed and run like any other
call (checked against the tool's schema by the registry), recorded as recovered from text.

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
from cvagents.llm.base import LLMRequest, LLMResult, Message, ToolCall
from cvagents.llm.text_tool_calls import find_text_tool_calls
from cvagents.planning.handoff import HandoffAction, action_key, by_priority
from cvagents.planning.meeting import prompt_hash, state_json
from cvagents.planning.team import Agent
from cvagents.secrets import redact, redact_value

log = logging.getLogger("cvagents.execution.executive")

RESULT_MAX_CHARS = 4000


class ActionStatus(StrEnum):
    """How a handoff action ended (the ``status`` of an ``action_finished`` record)."""

    SUCCEEDED = "succeeded"  # tools ran, and every failed call was followed by a successful call of that tool
    FAILED = "failed"  # a tool call failed and was never retried with success, the model stopped answering, or it ran out of steps
    REFUSED = "refused"  # a tool call was not allowed (the rollout controller): final, never retried as-is
    UNVERIFIED = "unverified"  # the agent called no tool: whatever it said, nothing shows the action was done


#: the label on an agent's own words wherever they travel on (the next meeting's state, reports)
CLAIM_LABEL = "agent said, no tool evidence: "
CLAIM_MAX_CHARS = 240
NO_TOOL = "no tool was called"
TEXT_CALL = "wrote a tool call as text instead of calling the tool"


class Recording(Protocol):
    """One action's tool calls and model answers as a run records them."""

    def call(self, ctx: ToolContext, name: str, arguments: Any, *, from_text: bool = False) -> ToolOutcome:
        """Run (or replay) one tool call (``from_text``: parsed from the model's text)."""
        ...

    def response(self, agent: str, step: int, prompt_hash: str) -> LLMResult | None:
        """The answer the journal already holds for this prompt, if any (never paid for twice)."""
        ...


class _Direct:
    """No recording: the registry runs every call, every model is asked."""

    def __init__(self, registry: ToolRegistry):
        self.registry = registry

    def call(self, ctx: ToolContext, name: str, arguments: Any, *, from_text: bool = False) -> ToolOutcome:
        outcome = self.registry.call(ctx, name, arguments)
        return dataclasses.replace(outcome, result=redact_value(outcome.result), recovered_from_text=from_text)

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
    #: tools the model wrote as JSON text instead of calling them (run only in lenient mode)
    text_tool_calls: list[str] = field(default_factory=list)

    @property
    def claim(self) -> str | None:
        """The agent's final words, labelled as its claim (never as a measurement)."""
        text = " ".join(self.final_text.split())
        if not text:
            return None
        if len(text) > CLAIM_MAX_CHARS:
            text = text[: CLAIM_MAX_CHARS - 1] + "…"
        return CLAIM_LABEL + text

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
            # what the agent said, labelled; a succeeded action's tool results say it already
            "claim": self.claim if self.status != ActionStatus.SUCCEEDED else None,
            **({"text_tool_calls": list(self.text_tool_calls)} if self.text_tool_calls else {}),
        }

    def evidence(self) -> str:
        """The action's outcome with its evidence, one line (``[ACTION]`` in executive.log)."""
        said = f'; agent said "{_short(self.final_text)}"' if self.final_text.strip() else ""
        if not self.outcomes:
            return f"{self.key} {self.status}: {self.error or NO_TOOL}{said}"
        tools = ", ".join(
            f"{o.tool} {'✅' if o.ok else '❌'}{' (from text)' if o.recovered_from_text else ''}" for o in self.outcomes
        )
        why = f" — {self.error}" if self.error and self.status != ActionStatus.SUCCEEDED else ""
        return f"{self.key} {self.status}: {tools}{why}"


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _result_text(o: ToolOutcome) -> str:
    text = json.dumps({"status": o.status, **o.result}, default=str)
    return text if len(text) <= RESULT_MAX_CHARS else text[:RESULT_MAX_CHARS] + "…"


def redacted_answer(res: LLMResult) -> LLMResult:
    """``res`` with every key in its text and tool-call arguments redacted: what is journaled,
    logged, reported and sent on is this, never the raw answer."""
    calls = tuple(dataclasses.replace(c, arguments=redact_value(c.arguments)) for c in res.tool_calls)
    return dataclasses.replace(res, text=redact(res.text), tool_calls=calls)


def action_status(outcomes: list[ToolOutcome]) -> tuple[ActionStatus, str | None]:
    """The action's status from its tool calls alone (what the model says plays no part): a
    refusal is final; no tool call at all is ``unverified``; it succeeded only when every failed
    call was followed later by a successful call of the same tool; else it failed with the
    error of the first failed call that was never made good."""
    refused = [o for o in outcomes if o.status == ToolStatus.REFUSED]
    if refused:
        return ActionStatus.REFUSED, refused[0].result.get("reason")
    if not outcomes:
        return ActionStatus.UNVERIFIED, NO_TOOL
    bad = _unrecovered(outcomes)
    return (ActionStatus.SUCCEEDED, None) if bad is None else (ActionStatus.FAILED, bad.result.get("error"))


def _unrecovered(outcomes: list[ToolOutcome]) -> ToolOutcome | None:
    """The first failed call not followed by a successful call of the same tool."""
    for i, o in enumerate(outcomes):
        if not o.ok and not any(later.ok and later.tool == o.tool for later in outcomes[i + 1 :]):
            return o
    return None


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
        # ordered for the providers' prompt caches: the fixed instruction, the state (stable keys
        # first), then the action, which changes with every request
        brief = {k: state.get(k) for k in ("thresholds", "stages", "current", "next_stage", "artifacts")}
        messages: list[Message] = [
            Message(
                "user",
                redact(
                    "Carry the action below out with your tools, then give your RESULT line.\n\n"
                    f"## Rollout state\n```json\n{state_json(brief)}\n```\n\n"
                    f"# Action {action.id} ({action.priority} priority) from {meeting_id}\n{action.action}\n\n"
                    f"Success criteria: {action.success_criteria}\n"
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
            calls, from_text = res.tool_calls, False
            if not calls:
                written = find_text_tool_calls(res.text)
                run.text_tool_calls += [c.name for c in written]
                lenient = agent.config.tool_call_parsing == "lenient"
                for c in written:
                    then = "running it (lenient parsing)" if lenient else "not run (strict parsing)"
                    log.info("[TOOL] %s %s: %s, for %s; %s", agent.name, TEXT_CALL, c.name, key, then)
                if not written or not lenient:
                    final = res.text
                    break
                calls = tuple(ToolCall(f"text_{step}_{i}", c.name, c.arguments) for i, c in enumerate(written))
                from_text = True
            messages.append(Message("assistant", res.text, tool_calls=calls))
            for call in calls:
                outcome = rec.call(ctx, call.name, call.arguments, from_text=from_text)
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
        status, err = action_status(run.outcomes)
        if status == ActionStatus.UNVERIFIED and run.text_tool_calls and not run.error:
            err = f"{TEXT_CALL}: {', '.join(run.text_tool_calls)}"
        if run.error and status in (ActionStatus.SUCCEEDED, ActionStatus.UNVERIFIED):
            status = ActionStatus.FAILED  # the model stopped answering or ran out of steps mid-action
        run.status, run.error = status, run.error or err
        run.duration_s = sw.elapsed()
        if status == ActionStatus.UNVERIFIED:
            log.info("[TOOL] %s called no tool for %s ❌ %s: %s", agent.name, key, status, run.error)
        elif status != ActionStatus.SUCCEEDED and not _failure_logged(run):
            log.info("[TOOL] %s for %s ❌ %s: %s", agent.name, key, status, run.error)
        log.info("[ACTION] %s", run.evidence())
        return run


def _failure_logged(run: ActionRun) -> bool:
    """Whether the tool call that decided the action's failure wrote its own ❌ line in this run
    (not when the agent never answered, called no tool, or ran out of steps, nor when the call
    was replayed from the journal: then the action's own ❌ line says why)."""
    if run.status == ActionStatus.REFUSED:
        deciding = next((o for o in run.outcomes if o.status == ToolStatus.REFUSED), None)
    else:
        deciding = _unrecovered(run.outcomes)
        if deciding is not None and run.error != deciding.result.get("error"):
            deciding = None
    return deciding is not None and not deciding.replayed
