"""Resolve a path an agent gave us, refusing anything outside the allowed folders."""

from __future__ import annotations

from pathlib import Path

from cvagents.execution.tools.registry import ToolRefused


def inside(root: Path, given: str, allowed: list[Path] | None = None, what: str = "path") -> Path:
    """``given`` relative to ``root`` (or absolute), resolved through symlinks; refused when it
    leaves ``root`` or, if ``allowed`` is set, every allowed folder."""
    if not given or "\x00" in given:
        raise ToolRefused(f"{what} {given!r} is empty or malformed")
    p = Path(given)
    resolved = (p if p.is_absolute() else root / p).resolve()
    folders = [a.resolve() for a in (allowed or [root])]
    if not any(resolved == f or f in resolved.parents for f in folders):
        names = ", ".join(str(f) for f in folders)
        raise ToolRefused(f"{what} {given!r} is outside the allowed folders ({names}); refused")
    return resolved
