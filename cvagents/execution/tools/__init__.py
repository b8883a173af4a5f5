"""The executive team's tools: each module defines its tools (``TOOLS``), their argument schemas
and, for a tool with side effects, its recovery hooks; the registry runs them."""

from __future__ import annotations

from cvagents.execution.tools import artifacts, deploy, evaluation, scripts, traffic
from cvagents.execution.tools.registry import (
    Tool,
    ToolContext,
    ToolFailed,
    ToolOutcome,
    ToolRefused,
    ToolRegistry,
    ToolStatus,
)

__all__ = [
    "Tool",
    "ToolContext",
    "ToolFailed",
    "ToolOutcome",
    "ToolRefused",
    "ToolRegistry",
    "ToolStatus",
    "default_registry",
]


def default_registry() -> ToolRegistry:
    return ToolRegistry([*artifacts.TOOLS, *deploy.TOOLS, *evaluation.TOOLS, *traffic.TOOLS, *scripts.TOOLS])
