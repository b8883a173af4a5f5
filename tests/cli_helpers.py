"""What the CLI tests share: the CLI in a subprocess, the one-line error a refused command
prints, a folder's files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def cvagents(*args, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    """``python -m cvagents ARGS`` as a user runs it, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "cvagents", *map(str, args)], capture_output=True, text=True, timeout=timeout, **kw
    )


def one_line_error(p: subprocess.CompletedProcess, *, stdout_empty: bool = True) -> str:
    """The one ``error:`` line of a refused command: exit 2, no traceback anywhere, and nothing
    else on stderr (nor on stdout, unless the command had printed results before it failed)."""
    assert p.returncode == 2, (p.returncode, p.stderr[-3000:])
    assert "Traceback" not in p.stderr + p.stdout
    if stdout_empty:
        assert p.stdout == "", p.stdout[-3000:]
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    return lines[0]


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes: equal before and after means nothing changed."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
