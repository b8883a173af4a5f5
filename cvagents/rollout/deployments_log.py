"""The guide's deployments log, ``<execution>/deployments_<date>.log``: one line per deployment,
rollback or rollback drill, by an executive's tool or by the rollout controller.

Lines are rendered from journaled records (a heartbeat's tool calls; the controller's rollback
decisions), so ``rebuild-reports`` writes the same lines again.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cvagents.durability.atomic import atomic_write_text

#: how the controller's automatic rollbacks show in the log (as a rollback the controller did)
CONTROLLER_TOOL, CONTROLLER_ACTION = "rollback_model", "rollout_controller"


def line(timestamp: str, tool: str, stage: Any, action_id: Any, succeeded: bool, result: Mapping[str, Any]) -> str:
    """One line: when, what, where, whose action, ✅/❌ and the reason or the version."""
    what = (
        result.get("reason")
        or result.get("error")
        or f"version={result.get('version') or result.get('live_version')} sha256={str(result.get('sha256') or result.get('model_sha256') or '')[:12]}"
    )
    return f"{timestamp} {tool} stage={stage} action={action_id} {'✅' if succeeded else '❌'} {what}"


def controller_lines(decision: Mapping[str, Any]) -> list[str]:
    """The line of a journaled decision, if it is one the log shows: the controller's rollbacks."""
    if decision.get("kind") != "rollback" or decision.get("source") != "controller":
        return []
    to = decision.get("rolled_back_to") or {}
    result = {"version": to.get("version"), "sha256": to.get("sha256")}
    return [line(decision_time(decision), CONTROLLER_TOOL, decision.get("stage"), CONTROLLER_ACTION, True, result)]


def decision_time(decision: Mapping[str, Any]) -> str:
    """A decision's time as the log shows it (seconds, no zone)."""
    return str(decision.get("time") or "")[:19]


def log_path(execution_dir: Path, timestamp: str) -> Path:
    """The day's log for a line written at ``timestamp`` (``2025-10-13T...`` -> ``deployments_20251013.log``)."""
    return Path(execution_dir) / f"deployments_{timestamp[:10].replace('-', '')}.log"


def append(execution_dir: Path, timestamp: str, lines: list[str]) -> None:
    """Add lines to the day's log: the whole file is replaced atomically, and lines already at
    its end (a step whose reports are written again after a crash) are not added twice."""
    if not lines:
        return
    path = log_path(execution_dir, timestamp)
    block = "\n".join(lines) + "\n"
    try:
        old = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        old = ""
    if old.endswith(block):
        return
    atomic_write_text(path, old + block)


def has_lines(execution_dir: Path, timestamp: str, lines: list[str]) -> bool:
    """Whether the day's log holds these lines already."""
    try:
        text = log_path(execution_dir, timestamp).read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    return all(ln + "\n" in text for ln in lines)
