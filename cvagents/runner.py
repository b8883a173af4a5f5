"""The one entry point that the CLI and the notebooks share: settings → teams → coordinator."""
from __future__ import annotations

from pathlib import Path

from .config import Settings, default_project_root
from .coordinator import Coordinator, RunOptions, install_sigint
from .team import build_teams


def run_system(
    workspace: Path | str,
    *,
    provider: str = "configured",
    meetings: int | None = None,
    time_scale: float = 1.0,
    project_root: Path | str | None = None,
    meeting_config: Path | str | None = None,
    coordination_config: Path | str | None = None,
    console: bool = True,
    handle_sigint: bool = True,
) -> dict:
    """Run the system until ``meetings`` meetings and their execution phases are done (or
    forever). The one entry point for the CLI and the notebooks."""
    settings = Settings(Path(project_root or default_project_root()), meeting_config, coordination_config)
    if provider != "offline":
        raise ValueError("only provider='offline' is available in this build")
    coord = Coordinator(settings, Path(workspace), RunOptions(meetings=meetings, time_scale=time_scale, console=console), build_teams(settings))
    if handle_sigint:
        install_sigint(coord.clock)
    try:
        return coord.run()
    finally:
        coord.close()
