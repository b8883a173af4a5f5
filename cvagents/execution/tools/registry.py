"""The tool registry: every tool an executive agent may call, with a JSON schema for its
arguments (from a pydantic model), and the one place where calls are checked and run.

A call naming an unknown tool, or with arguments that fail the schema, is refused with a
reason and never run; the refusal goes back to the model as the tool's result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from cvagents.llm.base import ToolSpec


class ToolRefused(Exception):
    """The call is not allowed (bad path, gate not passed, ...). Never retried as-is."""


class ToolFailed(Exception):
    """The call was allowed but did not achieve its effect."""


@dataclass
class ToolContext:
    workspace: Any  # cvagents.workspace.Workspace
    config: Any  # cvagents.config.CoordinationConfig
    action_key: str = "manual"
    now: Callable[[], Any] | None = None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("cvagents.execution.tools"))
    #: journals a record (the run's ``Coordinator.record``): rollout decisions reach the journal
    record: Callable[[str, dict], Any] | None = None


@dataclass(frozen=True)
class ToolOutcome:
    tool: str
    arguments: dict[str, Any]
    status: str  # "succeeded" | "failed" | "refused"
    result: dict[str, Any]
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def as_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "arguments": self.arguments,
            "status": self.status,
            "result": self.result,
            "duration_s": round(self.duration_s, 4),
        }


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args: type[BaseModel]
    fn: Callable[[ToolContext, BaseModel], dict[str, Any]]
    #: it changes the world beyond its own evidence records (a stage pointer, a deployment)
    side_effect: bool = False
    #: its calls are lines of the day's deployments log (reports/execution/deployments_<date>.log)
    deployment_log: bool = False

    def spec(self) -> ToolSpec:
        schema = self.args.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        schema.setdefault("properties", {})
        schema["additionalProperties"] = False
        return ToolSpec(self.name, self.description, schema)


class ToolRegistry:
    def __init__(self, tools: list[Tool]):
        self._tools = {t.name: t for t in tools}

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def specs(self) -> tuple[ToolSpec, ...]:
        return tuple(t.spec() for t in self._tools.values())

    def call(self, ctx: ToolContext, name: str, arguments: Any) -> ToolOutcome:
        t0 = time.perf_counter()
        args = arguments if isinstance(arguments, dict) else {"_raw": arguments}

        def done(status: str, result: dict[str, Any]) -> ToolOutcome:
            return ToolOutcome(name, args, status, result, time.perf_counter() - t0)

        tool = self._tools.get(name)
        if tool is None:
            return done("refused", {"reason": f"unknown tool {name!r}; allowed: {', '.join(self._tools)}"})
        try:
            parsed = tool.args.model_validate(args)
        except ValidationError as e:
            why = "; ".join(f"{'.'.join(map(str, x['loc'])) or 'arguments'}: {x['msg']}" for x in e.errors())
            return done("refused", {"reason": f"arguments do not match the schema of {name}: {why}"})
        try:
            return done("succeeded", tool.fn(ctx, parsed))
        except ToolRefused as e:
            return done("refused", {"reason": str(e)})
        except ToolFailed as e:
            return done("failed", {"error": str(e)})
        except Exception as e:  # a tool bug or an I/O error: reported, never fatal to the run
            ctx.log.exception("tool %s crashed", name)
            return done("failed", {"error": f"{type(e).__name__}: {e}"})
