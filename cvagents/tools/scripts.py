"""run_python_script: only scripts under the configured folders, no shell, a timeout, captured
and capped output, and an environment without API keys."""
from __future__ import annotations

import os
import subprocess
import sys

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .paths import inside
from .registry import Tool, ToolContext, ToolFailed, ToolRefused

SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL")


class ScriptArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="a .py script under research/, relative to the workspace")
    args: list[str] = Field(default_factory=list, max_length=32, description="command-line arguments (no shell)")

    @field_validator("args")
    @classmethod
    def _plain(cls, v: list[str]) -> list[str]:
        for a in v:
            if "\x00" in a or len(a) > 1000:
                raise ValueError("each argument must be under 1000 characters without NUL bytes")
        return v


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not any(m in k.upper() for m in SECRET_MARKERS)}


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n… [{len(text) - limit} more characters cut]"


def run_python_script(ctx: ToolContext, args: ScriptArgs) -> dict:
    ws, tcfg = ctx.workspace, ctx.config.tools
    allowed = [ws.root / f for f in tcfg.script_folders]
    script = inside(ws.root, args.path, allowed, what="script")
    if script.suffix != ".py":
        raise ToolRefused(f"script {args.path!r} is not a .py file; refused")
    if not script.is_file():
        raise ToolFailed(f"script {args.path} not found")
    try:
        p = subprocess.run(
            [sys.executable, str(script), *args.args],
            cwd=ws.root,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=tcfg.script_timeout_s,
            shell=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ToolFailed(f"{args.path} timed out after {tcfg.script_timeout_s:g} s") from None
    out = {
        "script": ws.rel(script),
        "args": args.args,
        "returncode": p.returncode,
        "stdout": _cap(p.stdout, tcfg.script_output_max_chars),
        "stderr": _cap(p.stderr, tcfg.script_output_max_chars),
    }
    if p.returncode != 0:
        raise ToolFailed(f"{args.path} exited with {p.returncode}: {out['stderr'][-500:]}")
    return out


TOOLS = [
    Tool("run_python_script", "Run a Python script under research/ (no shell, timeout, captured output), e.g. research/evaluate_model.py --model research/v1_production.pth --validation-set data/validation_set.", ScriptArgs, run_python_script),
]
