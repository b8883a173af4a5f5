"""run_python_script: only scripts under the configured folders, arguments checked, no shell, and
the script in a box.

Argument rules (no shell ever sees them, so ``$(...)``, ``;`` or spaces are inert text): at most
32 arguments of under 1000 characters, no NUL bytes or control characters, no ``~`` home paths,
and any argument that names a path (it contains a ``/`` or starts with ``.``; for
``--option=value`` the value) must stay inside the workspace.

The box: the script runs in a process group of its own (a new session), and on timeout the whole
group is killed — every process it started, not only the script; what is still running of the
group when the script ends is killed too, and the script dies with the run if the run is
killed (Linux). Before the script starts, the resource limits of
``tools.script_limits`` (CPU time, writable memory, file size, open files) are set on its
process, and every process it starts inherits them. Its environment holds no variable that
looks like a credential (``*KEY*``, ``*TOKEN*``, ...), and the run has already taken the API keys
out of its own environment (``secrets.keep_keys_in_memory``), so reading the parent's
``/proc/<pid>/environ`` finds none either. Its output is read up to a bound (memory stays
bounded whatever it prints), capped, and passed through ``redact_value`` before anyone sees it.

What a script can still do: it runs as the user who started the run, with that user's rights.
It can read and write whatever the user can — the whole workspace, the project's ``.env`` file,
files in the home folder — open network connections, and, where the system lets a process
inspect another of the same user (ptrace), read the coordinator's memory. The box bounds what a
runaway script costs and keeps keys out of what it is handed; it is not a sandbox against a
hostile one. Only put scripts you would run yourself under the script folders.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cvagents.execution.tools.paths import inside
from cvagents.execution.tools.registry import Tool, ToolContext, ToolFailed, ToolRefused
from cvagents.secrets import redact_value

SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL")

# Sets the limits given as its first four arguments ("-" = leave as is; never above the hard
# limit already in place), asks Linux to kill it if the run dies (PR_SET_PDEATHSIG), then
# becomes the script (exec: same process, same group, same limits).
_BOX = """
import os, resource, sys
try:
    import ctypes
    ctypes.CDLL(None).prctl(1, 9)
except (ImportError, OSError, AttributeError):
    pass
kinds = (resource.RLIMIT_CPU, resource.RLIMIT_DATA, resource.RLIMIT_FSIZE, resource.RLIMIT_NOFILE)
for kind, value in zip(kinds, sys.argv[1:5]):
    if value != "-":
        hard = resource.getrlimit(kind)[1]
        n = int(value) if hard == resource.RLIM_INFINITY else min(int(value), hard)
        resource.setrlimit(kind, (n, n))
os.execv(sys.executable, [sys.executable, *sys.argv[5:]])
"""
_MB = 1024 * 1024
# After a kill, how long to wait for the group's pipes to close (a process that left the group
# may hold them open; its output is then given up).
_DRAIN_S = 5.0


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


def box_command(limits: Any, script: Path, args: list[str]) -> list[str]:
    """The command that runs ``script`` under ``limits`` (a ``ScriptLimits``)."""

    def n(value: int | None, scale: int = 1) -> str:
        return "-" if value is None else str(value * scale)

    return [
        sys.executable,
        "-I",
        "-S",
        "-c",
        _BOX,
        n(limits.cpu_seconds),
        n(limits.memory_mb, _MB),
        n(limits.file_size_mb, _MB),
        n(limits.open_files),
        str(script),
        *args,
    ]


class _Capture:
    """Reads a pipe to its end on a thread of its own, keeping at most ``limit`` bytes."""

    def __init__(self, stream: IO[bytes], limit: int):
        self.kept = bytearray()
        self.dropped = 0
        self._stream, self._limit = stream, limit
        self._thread = threading.Thread(target=self._read, daemon=True, name="script-output")
        self._thread.start()

    def _read(self) -> None:
        while chunk := self._stream.read1(65536):  # type: ignore[attr-defined]  # a BufferedReader
            room = self._limit - len(self.kept)
            self.kept += chunk[:room]
            self.dropped += max(0, len(chunk) - room)

    def done(self, wait_s: float) -> bool:
        """Whether the pipe reached its end within ``wait_s``."""
        self._thread.join(wait_s)
        return not self._thread.is_alive()

    def text(self, max_chars: int) -> str:
        text = bytes(self.kept).decode("utf-8", errors="replace")
        if len(text) <= max_chars and not self.dropped:
            return text
        more = f"{len(text) - max_chars} more characters" if len(text) > max_chars else ""
        if self.dropped:
            more += f"{' and ' if more else ''}{self.dropped} more bytes"
        return text[:max_chars] + f"\n… [{more} cut]"


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):  # the group is gone already
        pass


def _ended(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with {returncode}"


def run_script(ws, tcfg, path: str, args: list[str], timeout_s: float | None = None) -> dict:
    """Run one script under the configured folders, in the box; raises ToolRefused (not
    allowed), ToolFailed (missing) or ScriptError (non-zero exit, killed, timeout)."""
    allowed = [ws.root / f for f in tcfg.script_folders]
    script = inside(ws.root, path, allowed, what="script")
    if script.suffix != ".py":
        raise ToolRefused(f"script {path!r} is not a .py file; refused")
    check_args(ws.root, args)
    if not script.is_file():
        raise ToolFailed(f"script {path} not found")
    timeout = timeout_s or tcfg.script_timeout_s
    limit = tcfg.script_output_max_chars
    p = subprocess.Popen(
        box_command(tcfg.script_limits, script, args),
        cwd=ws.root,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: killed whole
    )
    out_pipe, err_pipe = cast(IO[bytes], p.stdout), cast(IO[bytes], p.stderr)
    stdout, stderr = _Capture(out_pipe, 4 * limit), _Capture(err_pipe, 4 * limit)
    timed_out = False
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        _kill_group(p.pid)  # on timeout, the script and its children; else what it left running
        p.wait()
    if stdout.done(_DRAIN_S) and stderr.done(_DRAIN_S):
        out_pipe.close()
        err_pipe.close()
    # else a process that left the group still holds a pipe: its reader is left to end with it
    result = redact_value(
        {
            "script": ws.rel(script),
            "args": list(args),
            "returncode": p.returncode,
            "stdout": stdout.text(limit),
            "stderr": stderr.text(limit),
        }
    )
    if timed_out:
        raise ScriptError(f"{path} timed out after {timeout:g} s (it and every process it started were killed)")
    if p.returncode != 0:
        raise ScriptError(f"{path} {_ended(p.returncode)}: {result['stderr'][-500:]}")
    return result


def run_python_script(ctx: ToolContext, args: BaseModel) -> dict[str, Any]:
    a = cast(ScriptArgs, args)
    try:
        return run_script(ctx.workspace, ctx.config.tools, a.path, a.args)
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
