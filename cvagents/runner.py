"""The one entry point that the CLI and the notebooks share: settings → teams → coordinator."""
from __future__ import annotations

from pathlib import Path

import threading

from .clock import Clock
from .config import AgentConfig, Settings, default_project_root
from .coordinator import Coordinator, RunOptions, install_sigint
from .llm.cost import CostLedger
from .llm.factory import build_provider
from .llm.offline import OfflineProvider
from .secrets import KeyStore
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
    strict: bool = False,
) -> dict:
    """Run the system until ``meetings`` meetings and their execution phases are done (or
    forever). The one entry point for the CLI and the notebooks.

    ``provider="configured"`` puts each agent on its provider from configs/meeting.yaml (an
    agent without a key falls back to offline with a warning; ``strict`` makes that an error);
    ``provider="offline"`` puts every agent on the built-in offline provider.
    """
    settings = Settings(Path(project_root or default_project_root()), meeting_config, coordination_config)
    if provider not in ("configured", "offline"):
        raise ValueError(f"provider: expected 'configured' or 'offline', got {provider!r}")
    clock = Clock(time_scale)
    ledger = CostLedger(settings.meeting.budgets)
    teams = build_teams(settings, provider_factory(settings, provider, strict=strict, ledger=ledger, stop=clock.stop_event))
    coord = Coordinator(
        settings,
        Path(workspace),
        RunOptions(meetings=meetings, time_scale=time_scale, console=console),
        teams,
        clock=clock,
        ledger=ledger,
    )
    if handle_sigint:
        install_sigint(coord.clock)
    try:
        return coord.run()
    finally:
        coord.close()
        for agent in teams.all().values():
            close = getattr(agent.provider, "close", None)
            if close:
                close()


def provider_factory(settings: Settings, mode: str, *, strict: bool, ledger: CostLedger, stop: threading.Event | None = None, keys=None):
    """Agent config → provider: budgets and costs through ``ledger``, keys from the environment,
    a ``.env`` in the project root or Colab Secrets; retries wait on ``stop`` so Ctrl-C ends
    them at once."""
    m = settings.meeting
    keys = keys if keys is not None else KeyStore(dotenv_path=settings.project_root / ".env")
    offline = OfflineProvider()
    sleep = (lambda s: stop.wait(s)) if stop is not None else None

    def make(name: str, cfg: AgentConfig):
        return build_provider(
            name, cfg, m.defaults, mode=mode, keys=keys, strict=strict, ledger=ledger,
            pricing=m.pricing, budgets=m.budgets, offline_provider=offline, retry_sleep=sleep,
        )

    return make
