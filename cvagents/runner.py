"""The one entry point that the CLI and the notebooks share: settings → teams → coordinator."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from cvagents.clock import Clock, ManualClock
from cvagents.config import AgentConfig, Settings, default_project_root
from cvagents.llm.cost import CostLedger
from cvagents.llm.factory import build_provider
from cvagents.offline.provider import OfflineProvider
from cvagents.planning.team import build_teams
from cvagents.run.coordinator import Coordinator, RunOptions, install_sigint
from cvagents.secrets import KeyStore


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
    resume_from: str | Path | None = None,
    new_session: bool = False,
    mirror_to: str | Path | None = None,
    session_id: str | None = None,
    start_time: str | datetime | None = None,
    manual_clock: bool = False,
) -> dict:
    """Run the system until ``meetings`` meetings and their execution phases are done (or
    forever). The one entry point for the CLI and the notebooks.

    ``provider="configured"`` puts each agent on its provider from configs/meeting.yaml (an
    agent without a key falls back to offline with a warning; ``strict`` makes that an error);
    ``provider="offline"`` puts every agent on the built-in offline provider.

    An unfinished session in the workspace (killed, or stopped with Ctrl-C) is continued;
    ``new_session`` starts afresh instead. ``resume_from``: a mirror (folder or fsspec URL) to
    restore an empty workspace from before continuing its session; the run then mirrors back
    to it unless ``mirror_to`` says otherwise. ``mirror_to`` overrides ``mirror.target``.
    ``start_time`` (ISO 8601) starts a new session's simulated clock there; ``manual_clock``:
    steps take no simulated time and the schedule runs as fast as the machine allows (tests,
    benchmarks).
    """
    settings = Settings(Path(project_root or default_project_root()), meeting_config, coordination_config)
    if provider not in ("configured", "offline"):
        raise ValueError(f"provider: expected 'configured' or 'offline', got {provider!r}")
    start = _parse_start(start_time)
    clock = ManualClock(start) if manual_clock else Clock(time_scale, start)
    restored_session = None
    if resume_from:
        from cvagents.durability.session import restore_from_mirror
        from cvagents.workspace import Workspace

        extra = restore_from_mirror(resume_from, Workspace.from_config(Path(workspace), settings.coordination))
        restored_session = extra.get("session_id")
        mirror_to = mirror_to or resume_from
    ledger = CostLedger(settings.meeting.budgets)
    teams = build_teams(
        settings, provider_factory(settings, provider, strict=strict, ledger=ledger, stop=clock.stop_event)
    )
    coord = Coordinator(
        settings,
        Path(workspace),
        RunOptions(
            meetings=meetings,
            time_scale=time_scale,
            console=console,
            new_session=new_session,
            session_id=session_id or restored_session,
            mirror_to=str(mirror_to) if mirror_to else None,
            rebuild_reports=bool(resume_from),
            from_mirror=str(resume_from) if resume_from else None,
        ),
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


def mirror_to_restore(
    workspace: Path | str,
    mirror: str | Path | None,
    *,
    project_root: Path | str | None = None,
    meeting_config: Path | str | None = None,
    coordination_config: Path | str | None = None,
) -> str | None:
    """What a re-run notebook passes as ``run_system(resume_from=...)``: the mirror, when it holds
    a session and the workspace holds none (a new VM after a disconnect); otherwise None, because
    a workspace with sessions of its own is at least as new as its mirror."""
    from cvagents.durability.session import mirror_manifest, sessions
    from cvagents.workspace import Workspace

    if not mirror:
        return None
    settings = Settings(Path(project_root or default_project_root()), meeting_config, coordination_config)
    if sessions(Workspace.from_config(Path(workspace), settings.coordination).sessions_dir):
        return None
    manifest = mirror_manifest(mirror)
    return str(mirror) if manifest and (manifest.get("extra") or {}).get("session_id") else None


def _parse_start(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    t = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def provider_factory(
    settings: Settings, mode: str, *, strict: bool, ledger: CostLedger, stop: threading.Event | None = None, keys=None
):
    """Agent config → provider: budgets and costs through ``ledger``, keys from the environment,
    a ``.env`` in the project root or Colab Secrets; retries wait on ``stop`` so Ctrl-C ends
    them at once."""
    m = settings.meeting
    keys = keys if keys is not None else KeyStore(dotenv_path=settings.project_root / ".env")
    offline = OfflineProvider()
    sleep = (lambda s: stop.wait(s)) if stop is not None else None

    def make(name: str, cfg: AgentConfig):
        return build_provider(
            name,
            cfg,
            m.defaults,
            mode=mode,
            keys=keys,
            strict=strict,
            ledger=ledger,
            pricing=m.pricing,
            budgets=m.budgets,
            offline_provider=offline,
            retry_sleep=sleep,
        )

    return make
