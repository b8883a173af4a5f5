"""The tool registry: every tool an executive agent may call, with a JSON schema for its
arguments (from a pydantic model), and the one place where calls are checked and run.

A call naming an unknown tool, or with arguments that fail the schema (a missing, extra or
mistyped argument, a value not among the allowed ones), is never run and *fails* with an error
that names the argument and what is allowed: the model can fix it on its next step. ``refused``
is kept for calls that are not allowed (the rollout controller, a path outside the workspace):
final, never retried as-is.

A tool owns its recovery. A run journals every call as started (with what the tool's ``before``
hook says the world looked like) and as finished; after a crash between the two, the run asks
the tool's ``repair`` hook to check the half-done call against the world (and undo what is half
done) before running it again, idempotent on the action id, and the tool's ``recovered`` hook
to answer as the interrupted call would have. A tool without hooks is simply run again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ValidationError

from cvagents.clock import stopwatch
from cvagents.execution import spans
from cvagents.llm.base import ToolSpec


class ToolRefused(Exception):
    """The call is not allowed (bad path, gate not passed, ...). Never retried as-is."""


class ToolFailed(Exception):
    """The call was allowed but did not achieve its effect."""


class ToolArgumentError(ToolFailed):
    """An argument the model can fix (a value not among the allowed ones): the call fails with
    this message as the tool's error, never a refusal, and nothing is recorded as a decision."""


def not_allowed_value(argument: str, value: Any, allowed: Iterable[str]) -> ToolArgumentError:
    """The error for ``argument`` given a ``value`` that is not one of ``allowed``."""
    return ToolArgumentError(f"argument {argument}: {value!r} is not allowed; expected one of {', '.join(allowed)}")


@dataclass
class ToolContext:
    workspace: Any  # cvagents.workspace.Workspace
    config: Any  # cvagents.config.CoordinationConfig
    action_key: str = "manual"
    now: Callable[[], Any] | None = None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("cvagents.execution.tools"))
    agent: str = ""  # the agent carrying out the action
    #: journals a record (the run's ``Coordinator.record``): rollout decisions reach the journal
    record: Callable[[str, dict], Any] | None = None


class ToolStatus(StrEnum):
    """How a tool call ended (the ``status`` of a ``tool_call`` record)."""

    SUCCEEDED = "succeeded"  # the tool ran and achieved its effect; ``result`` says what it did
    FAILED = "failed"  # no effect, a crash, or wrong arguments (then never run); ``result["error"]``
    REFUSED = "refused"  # not allowed (the controller, a path outside the workspace); ``result["reason"]``


@dataclass(frozen=True)
class ToolOutcome:
    tool: str
    arguments: dict[str, Any]
    status: ToolStatus
    result: dict[str, Any]
    duration_s: float
    #: taken from the journal on resume: the tool was not run (nor journaled) again
    replayed: bool = field(default=False, compare=False)
    #: the model wrote this call as JSON text, not as a native tool call (lenient parsing)
    recovered_from_text: bool = False

    @property
    def ok(self) -> bool:
        return self.status == ToolStatus.SUCCEEDED

    def as_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "arguments": self.arguments,
            "status": self.status,
            "result": self.result,
            "duration_s": round(self.duration_s, 4),
            **({"recovered_from_text": True} if self.recovered_from_text else {}),
        }


#: What a tool without a ``repair`` hook reports when a call of it was cut off by a crash.
RERUN = "re-running (idempotent on the action id)"


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args: type[BaseModel]
    fn: Callable[[ToolContext, Any], dict[str, Any]]  # (context, an instance of ``args``) -> result
    #: it changes the world beyond its own evidence records (a stage pointer, a deployment)
    side_effect: bool = False
    #: its calls are lines of the day's deployments log (reports/execution/deployments_<date>.log)
    deployment_log: bool = False
    # Recovery hooks (optional; ``args`` below are the call's arguments as given, not validated):
    #: (ctx, args) -> what the world looked like before the call, as far as the call's result
    #: or its undo depends on it; journaled with ``tool_started``
    before: Callable[[ToolContext, dict[str, Any]], dict[str, Any]] | None = None
    #: (ctx, args, before) -> what was found: check a call cut off by a crash against the world,
    #: keep what it finished and undo what is half done, so that running it again does it whole
    repair: Callable[[ToolContext, dict[str, Any], dict[str, Any]], str] | None = None
    #: (ctx, outcome, before) -> the outcome of a call that found its work already done (its
    #: ``already_done`` flag removed), answered as the call that did the work answered
    recovered: Callable[[ToolContext, ToolOutcome, dict[str, Any]], ToolOutcome] | None = None

    def spec(self) -> ToolSpec:
        schema = self.args.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        schema.setdefault("properties", {})
        schema["additionalProperties"] = False
        return ToolSpec(self.name, self.description, schema)

    def world_before(self, ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
        return self.before(ctx, args) if self.before else {}

    def repair_world(self, ctx: ToolContext, args: dict[str, Any], before: dict[str, Any]) -> str:
        return self.repair(ctx, args, before) if self.repair else RERUN

    def recovered_outcome(self, ctx: ToolContext, outcome: ToolOutcome, before: dict[str, Any]) -> ToolOutcome:
        """A re-run's outcome as the interrupted (or unjournaled) call would have reported it."""
        outcome = dataclasses.replace(outcome, result={k: v for k, v in outcome.result.items() if k != "already_done"})
        if outcome.ok and self.recovered:
            return self.recovered(ctx, outcome, before)
        return outcome


def schema_error(tool: str, e: ValidationError) -> str:
    """One line naming each wrong argument and what it expects (pydantic lists a Literal's values)."""
    why = "; ".join(
        f"argument {'.'.join(map(str, x['loc'])) or '(all)'}: {x['msg']}"
        + (f" (got {x['input']!r})" if x["type"] not in ("missing", "extra_forbidden") else "")
        for x in e.errors()
    )
    return f"arguments do not match the schema of {tool}: {why}; fix them and call {tool} again"


class ToolRegistry:
    def __init__(self, tools: list[Tool]):
        self._tools = {t.name: t for t in tools}

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def specs(self) -> tuple[ToolSpec, ...]:
        return tuple(t.spec() for t in self._tools.values())

    @spans.tool_call
    def call(self, ctx: ToolContext, name: str, arguments: Any) -> ToolOutcome:
        sw = stopwatch()
        args = arguments if isinstance(arguments, dict) else {"_raw": arguments}

        def done(status: ToolStatus, result: dict[str, Any]) -> ToolOutcome:
            return ToolOutcome(name, args, status, result, sw.elapsed())

        tool = self._tools.get(name)
        if tool is None:
            return done(ToolStatus.FAILED, {"error": f"unknown tool {name!r}; the tools are {', '.join(self._tools)}"})
        try:
            parsed = tool.args.model_validate(args)
        except ValidationError as e:
            return done(ToolStatus.FAILED, {"error": schema_error(name, e)})
        try:
            return done(ToolStatus.SUCCEEDED, tool.fn(ctx, parsed))
        except ToolRefused as e:
            return done(ToolStatus.REFUSED, {"reason": str(e)})
        except ToolFailed as e:
            return done(ToolStatus.FAILED, {"error": str(e)})
        except OSError as e:  # the environment failed (a full disk, a read-only folder): one line
            ctx.log.warning("tool %s failed: %s", name, e)
            return done(ToolStatus.FAILED, {"error": f"{type(e).__name__}: {e}"})
        except Exception as e:  # a tool bug: reported with its traceback, never fatal to the run
            ctx.log.exception("tool %s crashed", name)
            return done(ToolStatus.FAILED, {"error": f"{type(e).__name__}: {e}"})
