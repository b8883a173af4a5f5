"""What every ``cvagents`` command shares: where its output goes, what its exit code means,
and how a failure is told in one line.

A command's result goes to stdout: human text, or with ``--json`` one JSON document. Everything
else (the run's log, notes, errors) goes to stderr, so ``cvagents run --json > result.json`` and
``cvagents status | head -1`` work as in any Unix tool. A failure the user can act on is one line
on stderr, ``error: <path>: <what>``, exit code 2 (``ExitCode``).
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import sys
from enum import IntEnum
from importlib import metadata
from pathlib import Path, PurePath
from typing import Any

from cvagents.secrets import redact


class ExitCode(IntEnum):
    """What a ``cvagents`` exit code means."""

    OK = 0
    FAILED = 1  # a verdict or a run that went wrong: damage found, a run ended on an error
    USER_ERROR = 2  # a failure the user can act on (CVAgentsError, the environment), or bad usage
    INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as a shell reports it
    READER_GONE = 141  # stdout's reader closed early: 128 + SIGPIPE, as a shell reports a tool it ended


def run_exit_code(status: str) -> ExitCode:
    """A run's exit code from its result's ``status``: finished 0; stopped by the user (Ctrl-C:
    "stopped", or "interrupted") 130; anything else, a run that ended on an error, 1."""
    from cvagents.durability.session import SessionStatus

    if status == SessionStatus.FINISHED:
        return ExitCode.OK
    return ExitCode.INTERRUPTED if status in (SessionStatus.STOPPED, "interrupted") else ExitCode.FAILED


def reader_gone() -> int:
    """stdout's reader closed early (``cvagents status | head -1``): no traceback, and what is
    still buffered goes to /dev/null so the interpreter's last flush cannot fail either."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return ExitCode.READER_GONE


def existing_workspace(workspace: str | os.PathLike) -> Path:
    """A workspace (or mirror) folder a command reads or adds to: one that does not exist is
    refused, before anything is created there."""
    root = Path(workspace)
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "a file, not a workspace or mirror folder", str(root))
    if not root.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such workspace or mirror folder", str(root))
    return root


def package_version() -> str:
    """The installed package's version (its metadata), as ``--version`` shows it."""
    try:
        return metadata.version("cvagents")
    except metadata.PackageNotFoundError:
        return "(not installed: running from a source folder)"


def emit(args, data: Any, text: str) -> None:
    """A command's result on stdout: ``data`` as JSON with ``--json``, else ``text``."""
    if args.json:
        print_json(data)
    else:
        print(text)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def fail(message: str, code: int = ExitCode.USER_ERROR) -> int:
    """``error: <message>`` on one line of stderr, with any key in it redacted."""
    print("error: " + " ".join(redact(message).splitlines()), file=sys.stderr)
    return code


def describe_os_error(e: OSError) -> str:
    what = e.strerror or str(e)
    if e.filename is not None:
        where = os.fsdecode(e.filename) + (f" -> {os.fsdecode(e.filename2)}" if e.filename2 is not None else "")
    else:
        where = path_of(e) or "(the workspace)"
    return f"{where}: {what}"


def path_of(e: BaseException) -> str | None:
    """The file a failure was about, when the error does not say (a decoding error, a write to a
    full disk through a descriptor): the innermost frame of its traceback that holds a path, an
    open file, or an object with a ``path``/``directory`` names it. Readers that know their
    file should say it in their own error; this is the fallback."""
    frames = []
    tb = e.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        for name, value in frame.f_locals.items():
            if name == "self":
                value = getattr(value, "path", None) or getattr(value, "directory", None) or value
            if isinstance(value, PurePath):
                return str(value)
            if isinstance(value, io.IOBase) and isinstance(getattr(value, "name", None), str):
                return str(value.name)  # type: ignore[attr-defined]
            if name in ("path", "filename", "file") and isinstance(value, str):
                return value
    return None
