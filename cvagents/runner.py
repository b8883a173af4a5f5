"""The one entry point that the CLI and the notebooks share: settings → teams → coordinator."""

from __future__ import annotations

import errno
import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

from cvagents.clock import Clock, ManualClock
from cvagents.config import (
    AgentConfig,
    ConfigError,
    LocalModel,
    Settings,
    check_local_model,
    check_run_options,
    check_session_id,
    default_project_root,
)
from cvagents.durability.lock import WorkspaceLock
from cvagents.durability.session import SessionStatus
from cvagents.llm.cost import CostLedger
from cvagents.llm.factory import ManagedProvider, build_provider
from cvagents.offline.provider import OfflineProvider
from cvagents.planning.team import build_teams
from cvagents.run.coordinator import Coordinator, RunOptions, install_sigint
from cvagents.secrets import STANDARD_KEY_NAMES, KeyStore, keep_keys_in_memory

RunMode = Literal["configured", "offline"]

log = logging.getLogger("cvagents.runner")


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
    repair: bool = False,
    local_model: str | None = None,
    model: str | None = None,
) -> dict:
    """Run the system until ``meetings`` meetings and their execution phases are done (or
    forever). The one entry point for the CLI and the notebooks.

    ``provider="configured"`` puts each agent on its provider from configs/meeting.yaml (an
    agent without a key falls back to offline with a warning; ``strict`` makes that an error);
    ``provider="offline"`` puts every agent on the built-in offline provider.
    ``local_model`` (a URL) with ``model`` (a name; both or neither), or ``defaults.local_model``
    in meeting.yaml, puts every agent on that OpenAI-compatible server with the local preset
    (``config.meeting.LocalModel``): no key is looked up or sent, a failed call falls over to
    offline; a server that does not answer at all is refused before the run starts.

    An unfinished session in the workspace (killed, or stopped with Ctrl-C) is continued;
    ``new_session`` starts afresh instead. ``resume_from``: a mirror (folder or fsspec URL) to
    restore an empty workspace from before continuing its session; the run then mirrors back
    to it unless ``mirror_to`` says otherwise. A session that finished is never continued, here
    or restored from its mirror: a new session starts on the workspace it left (one log line
    says so). ``mirror_to`` overrides ``mirror.target``.
    ``start_time`` (ISO 8601) starts a new session's simulated clock there; ``manual_clock``:
    steps take no simulated time and the schedule runs as fast as the machine allows (tests,
    benchmarks). A damaged journal is refused (``JournalDamaged``, naming the segment and line)
    unless ``repair``: then it is cut at the damage, what was lost is journaled, and the session
    resumes from the last checkpoint before it.

    Everything it is given is checked before anything is created (a ``ConfigError`` naming the
    file and key, or the option). The run holds the workspace lock throughout: a second run on
    the same workspace is refused (``WorkspaceInUse``). The API keys leave this process's
    environment before any agent or script starts (``secrets.keep_keys_in_memory``): the
    providers get them from the key store; no process the run starts can read them.

    Interrupted (``KeyboardInterrupt``: a notebook cell interrupt, a second Ctrl-C), the session
    is marked ``stopped`` (the next run continues it) and one line says so, no traceback: the
    result's ``status`` is then ``"stopped"``, as after a first Ctrl-C (a stop between steps).
    """
    switch = check_local_model(local_model, model)
    if provider not in ("configured", "offline"):
        raise ConfigError(f"--provider: expected 'configured' or 'offline', got {provider!r}")
    if switch and provider == "offline":
        raise ConfigError("--local-model: cannot be combined with --provider offline (every agent on one provider)")
    settings = Settings(Path(project_root or default_project_root()), meeting_config, coordination_config, switch)
    local = settings.meeting.defaults.local_model
    if local is not None and provider == "configured":
        _check_local_server(local, "--local-model" if switch else f"{settings.meeting_path}: defaults.local_model")
    check_run_options(meetings=meetings, time_scale=time_scale)
    if session_id is not None:
        check_session_id(session_id)
    start = _parse_start(start_time)
    if resume_from:
        _mirror_session(resume_from)  # an id that would name a folder outside the workspace: refused now
    _check_mirror_target(settings, Path(workspace), mirror_to=mirror_to, resume_from=resume_from)
    root = _workspace_folder(workspace)
    own_names = [a.api_key_env for a in settings.meeting.agents.values() if a.api_key_env]
    # one run per workspace, from before its session exists to its end; the keys out of the
    # environment before any agent or script starts
    with WorkspaceLock(root), keep_keys_in_memory([*STANDARD_KEY_NAMES, *own_names]):
        from cvagents.durability.session import session_to_continue, simulated_end
        from cvagents.workspace import Workspace

        keys = KeyStore(dotenv_path=settings.dotenv_path)
        sessions_dir = Workspace.from_config(root, settings.coordination).sessions_dir
        restored_session = None
        if resume_from:
            from cvagents.durability.session import restore_from_mirror

            extra = restore_from_mirror(resume_from, Workspace.from_config(root, settings.coordination))
            # the mirror's session, unless it finished: then a new one, as on the VM that ran it
            restored_session = session_to_continue(sessions_dir, _mirror_session(resume_from, extra))
            mirror_to = mirror_to or resume_from
        if start is None:  # a new session begins where the workspace's last one ended, if that is later than now
            end = simulated_end(sessions_dir)
            start = end if end and end > datetime.now(UTC) else None
        clock = ManualClock(start) if manual_clock else Clock(time_scale, start)
        ledger = CostLedger(settings.meeting.budgets)
        make = provider_factory(
            settings, cast(RunMode, provider), strict=strict, ledger=ledger, stop=clock.stop_event, keys=keys
        )
        teams = build_teams(settings, make)
        try:
            coord = Coordinator(
                settings,
                root,
                RunOptions(
                    meetings=meetings,
                    time_scale=time_scale,
                    console=console,
                    new_session=new_session,
                    session_id=session_id or restored_session,
                    mirror_to=str(mirror_to) if mirror_to else None,
                    rebuild_reports=bool(resume_from),
                    from_mirror=str(resume_from) if resume_from else None,
                    repair=repair,
                ),
                teams,
                clock=clock,
                ledger=ledger,
            )
            before = signal.getsignal(signal.SIGINT)
            if handle_sigint:
                install_sigint(coord.clock)
            try:
                _say_who_runs(coord, sessions_dir, resume_from)
                try:
                    return coord.run()
                except KeyboardInterrupt:  # a cell interrupt, a second Ctrl-C: stopped, not left running
                    result = coord.end(SessionStatus.STOPPED, interrupted=True)
                    log.warning(
                        "⏹ Interrupted: session %s is marked stopped; run the same command again to continue it",
                        coord.session_id,
                    )
                    return result
            finally:
                coord.close()
                if handle_sigint and threading.current_thread() is threading.main_thread():
                    signal.signal(signal.SIGINT, before)  # the caller's Ctrl-C again (a notebook kernel's)
        finally:
            for agent in teams.all().values():
                agent.provider.close()  # Provider.close: a no-op unless the provider holds a client


def _say_who_runs(coord: Coordinator, sessions_dir: Path, resume_from: str | Path | None) -> None:
    """The log's first lines: which provider serves the agents (who fell back to offline, and
    why), and, when a new session starts after another (finished, or left as it is), one line
    saying so: the same on the machine that ran that session and on one restored from its mirror."""
    from cvagents.durability.session import previous_session
    from cvagents.run.roster import describe, fallbacks

    (log.warning if fallbacks(coord.agents) else log.info)(describe(coord.agents))
    prev = None if coord.resuming else previous_session(sessions_dir, coord.session_id)
    if prev is None:
        return
    log.info(
        "🆕 New session %s: the last session %s %s%s; this one goes on from the workspace it left",
        coord.session_id,
        prev["id"],
        "finished" if prev["status"] == "finished" else f"is {prev['status'] or 'unreadable'} and stays as it is",
        f" (restored from the mirror {resume_from})" if resume_from else "",
    )


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


def _workspace_folder(workspace: Path | str) -> Path:
    """The workspace folder, made if missing; a path that is a file is an OSError naming it."""
    root = Path(workspace)
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "the workspace is a file, not a folder", str(root))
    root.mkdir(parents=True, exist_ok=True)
    return root


def _check_mirror_target(
    settings: Settings, workspace: Path, *, mirror_to: str | Path | None, resume_from: str | Path | None
) -> None:
    """The target the run will mirror to, refused now if it cannot work (``check_target``)."""
    from cvagents.durability.mirror_target import check_target
    from cvagents.durability.session import mirror_sources
    from cvagents.workspace import Workspace

    for target, where in (
        (mirror_to, "--mirror-to"),
        (None if mirror_to else resume_from, "--resume-from"),
        (
            None if mirror_to or resume_from else settings.coordination.mirror.target,
            f"{settings.coordination_path}: mirror.target",
        ),
    ):
        if target:
            ws = Workspace.from_config(workspace, settings.coordination)
            check_target(target, workspace=ws.root, copied=mirror_sources(ws), where=where)


def _mirror_session(mirror: str | Path, extra: dict[str, Any] | None = None) -> str | None:
    """The session id a mirror's manifest names (``extra``: the manifest's, once restored),
    checked: it becomes a folder name under the workspace."""
    from cvagents.durability.session import mirror_manifest

    if extra is None:
        extra = (mirror_manifest(mirror) or {}).get("extra") or {}
    sid = extra.get("session_id")
    return None if sid is None else check_session_id(sid, f"{mirror}/MANIFEST.json: extra.session_id")


def _check_local_server(local: LocalModel, where: str) -> None:
    """A ``ConfigError`` when nothing answers at the local server's URL (connection refused, no
    such host): otherwise every call would fall over to the offline provider, one by one. Any
    HTTP answer, or a server too busy to answer within seconds, counts as there."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{local.base_url}/models", timeout=10):
            return
    except urllib.error.HTTPError:
        return  # it answered (some servers have no /models)
    except urllib.error.URLError as e:
        raise ConfigError(
            f"{where}: no server answers at {local.base_url} ({e.reason}); start it first "
            "(ollama serve, vllm serve, llama-server)"
        ) from None
    except (TimeoutError, OSError):
        return  # connected, but busy (a CPU server mid-generation) or the answer broke off


def _parse_start(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        t = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"--start-time: expected an ISO 8601 time, e.g. 2025-01-01T00:00:00, got {value!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def provider_factory(
    settings: Settings,
    mode: RunMode,
    *,
    strict: bool,
    ledger: CostLedger,
    stop: threading.Event | None = None,
    keys: KeyStore | None = None,
) -> Callable[[str, AgentConfig], ManagedProvider]:
    """Agent config → provider: budgets and costs through ``ledger``, keys from ``keys`` (by
    default a key store over the environment, a ``.env`` in the project root and Colab
    Secrets); retries wait on ``stop`` so Ctrl-C ends them at once."""
    m = settings.meeting
    store: KeyStore | dict[str, str] = keys if keys is not None else KeyStore(dotenv_path=settings.dotenv_path)
    if m.defaults.local_model is not None:
        store = {}  # a local server gets no key of ours: none is looked up, sent or kept
    offline = OfflineProvider()
    sleep: Callable[[float], None] | None = None
    if stop is not None:
        event = stop

        def sleep(seconds: float) -> None:
            event.wait(seconds)

    def make(name: str, cfg: AgentConfig) -> ManagedProvider:
        return build_provider(
            name,
            cfg,
            m.defaults,
            mode=mode,
            keys=store,
            strict=strict,
            ledger=ledger,
            pricing=m.pricing,
            budgets=m.budgets,
            offline_provider=offline,
            retry_sleep=sleep,
        )

    return make
