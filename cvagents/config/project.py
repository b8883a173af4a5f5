"""Where a run's configuration comes from, and ``cvagents init``.

A *project* is a folder holding ``configs/`` (``meeting.yaml``, ``autonomous_coordination.yaml``)
and the ``prompts/`` they name. The defaults ship inside the package, in ``cvagents/defaults/``
(laid out as a project, with the handoff docs a workspace gets under ``reports/handoff/``), so a
plain ``pip install`` has them. ``init_project`` writes editable copies into a folder.

Which project a run uses when none is given (``default_project_root``), first match wins:

1. the current folder, when its ``configs/`` holds either config file (``cvagents init .``);
2. the source checkout ``cvagents`` is imported from (a clone, an editable install, the Colab
   copy), when it holds its ``configs/`` — so editing a clone's configs works from any folder;
3. the packaged defaults.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

#: the defaults shipped inside the package, laid out as a project
DEFAULTS = Path(__file__).resolve().parent.parent / "defaults"
CONFIG_FILES = ("meeting.yaml", "autonomous_coordination.yaml")
#: what ``cvagents init`` copies: the parts of a project a user edits
EDITABLE = ("configs", "prompts")


def packaged_defaults() -> Path:
    """``cvagents/defaults``: the project that a plain install runs with."""
    return DEFAULTS


def is_project(folder: Path | str) -> bool:
    """Whether ``folder`` holds a project's own configuration (either config file in ``configs/``)."""
    return any((Path(folder) / "configs" / name).is_file() for name in CONFIG_FILES)


def _checkout() -> Path | None:
    """The source checkout the package is imported from, if it is one (it has the project's
    ``pyproject.toml`` and its ``configs/``); None for an installed package."""
    root = DEFAULTS.parent.parent
    return root if (root / "pyproject.toml").is_file() and is_project(root) else None


def default_project_root(cwd: Path | str | None = None) -> Path:
    """The project a run uses when none is given (the module docstring's order)."""
    here = Path.cwd() if cwd is None else Path(cwd)
    if is_project(here):
        return here.resolve()
    return _checkout() or DEFAULTS


class Written(StrEnum):
    """What ``init_project`` did with one file."""

    WROTE = "wrote"  # the file was not there
    REPLACED = "replaced"  # it was there, different, and --force replaced it
    KEPT = "kept"  # it was there and differs from the default: left alone (no --force)
    SAME = "same"  # it was there with the default's contents


def init_project(folder: Path | str, *, force: bool = False) -> list[tuple[Path, Written]]:
    """Copy the packaged ``configs/`` and ``prompts/`` into ``folder`` (made if missing), one
    entry per file in a stable order. A file already there is never overwritten unless ``force``."""
    folder = Path(folder)
    done: list[tuple[Path, Written]] = []
    for part in EDITABLE:
        for src in sorted(p for p in (DEFAULTS / part).rglob("*") if p.is_file()):
            dst = folder / src.relative_to(DEFAULTS)
            data = src.read_bytes()
            if not dst.exists():
                what = Written.WROTE
            elif dst.is_file() and dst.read_bytes() == data:
                done.append((dst, Written.SAME))
                continue
            elif force:
                what = Written.REPLACED
            else:
                done.append((dst, Written.KEPT))
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(data)
            done.append((dst, what))
    return done
