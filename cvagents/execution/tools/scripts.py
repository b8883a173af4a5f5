"""run_python_script: only scripts under the configured folders, arguments checked, no shell, a
timeout, captured and capped output, and an environment without API keys.

Argument rules (no shell ever sees them, so ``$(...)``, ``;`` or spaces are inert text): at most
32 arguments of under 1000 characters, no NUL bytes or control characters, no ``~`` home paths,
and any argument that names a path (it contains a ``/`` or starts with ``.``; for
``--option=value`` the value) must stay inside the workspace.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cvagents.execution.tools.paths import inside
from cvagents.execution.tools.registry import Tool, ToolContext, ToolFailed, ToolRefused

SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL")


class ScriptError(Exception):
    """The script ran but did not succeed (exit status, timeout)."""


class ScriptArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="a .py script under research/, relative to the workspace")
    args: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="command-line arguments (no shell); paths must stay inside the workspace",
    )

    @field_validator("args")
    @classmethod
    def _plain(cls, v: list[str]) -> list[str]:
        for a in v:
            if "\x00" in a or len(a) > 1000:
                raise ValueError("each argument must be under 1000 characters without NUL bytes")
            if any(ord(c) < 32 and c not in "\t" for c in a):
                raise ValueError(f"argument {a[:40]!r} holds control characters")
        return v


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not any(m in k.upper() for m in SECRET_MARKERS)}


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n… [{len(text) - limit} more characters cut]"


def check_args(root: Path, args: list[str]) -> None:
    """Refuse arguments that point outside the workspace (see the module docstring)."""
    for a in args:
        value = a.split("=", 1)[1] if a.startswith("-") and "=" in a else a
        if value.startswith("~"):
            raise ToolRefused(f"argument {a!r} names a home-directory path; only workspace paths are allowed")
        if "/" in value or value.startswith("."):
            if "://" in value:
                raise ToolRefused(f"argument {a!r} is a URL; scripts get workspace paths only")
            inside(root, value, what="argument")


def run_script(ws, tcfg, path: str, args: list[str], timeout_s: float | None = None) -> dict:
    """Run one script under the configured folders; raises ToolRefused (not allowed),
    ToolFailed (missing) or ScriptError (non-zero exit, timeout)."""
    allowed = [ws.root / f for f in tcfg.script_folders]
    script = inside(ws.root, path, allowed, what="script")
    if script.suffix != ".py":
        raise ToolRefused(f"script {path!r} is not a .py file; refused")
    check_args(ws.root, args)
    if not script.is_file():
        raise ToolFailed(f"script {path} not found")
    timeout = timeout_s or tcfg.script_timeout_s
    try:
        p = subprocess.run(
            [sys.executable, str(script), *args],
            cwd=ws.root,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            shell=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ScriptError(f"{path} timed out after {timeout:g} s") from None
    out = {
        "script": ws.rel(script),
        "args": list(args),
        "returncode": p.returncode,
        "stdout": _cap(p.stdout, tcfg.script_output_max_chars),
        "stderr": _cap(p.stderr, tcfg.script_output_max_chars),
    }
    if p.returncode != 0:
        raise ScriptError(f"{path} exited with {p.returncode}: {out['stderr'][-500:]}")
    return out


def run_python_script(ctx: ToolContext, args: ScriptArgs) -> dict:
    try:
        return run_script(ctx.workspace, ctx.config.tools, args.path, args.args)
    except ScriptError as e:
        raise ToolFailed(str(e)) from None


TOOLS = [
    Tool(
        "run_python_script",
        "Run a Python script under research/ (no shell, timeout, captured output), e.g. research/evaluate_model.py --model research/v1_production.pth --validation-set data/validation_set.",
        ScriptArgs,
        run_python_script,
    ),
]
