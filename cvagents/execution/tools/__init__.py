"""The executive team's tools."""

from __future__ import annotations

from cvagents.execution.tools import artifacts, deploy, evaluation, scripts, traffic
from cvagents.execution.tools.registry import Tool, ToolContext, ToolFailed, ToolOutcome, ToolRefused, ToolRegistry

__all__ = ["Tool", "ToolContext", "ToolFailed", "ToolOutcome", "ToolRefused", "ToolRegistry", "default_registry"]


def default_registry() -> ToolRegistry:
    return ToolRegistry([*artifacts.TOOLS, *deploy.TOOLS, *evaluation.TOOLS, *traffic.TOOLS, *scripts.TOOLS])
