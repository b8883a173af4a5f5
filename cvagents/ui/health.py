"""How a monitored folder stands: empty, partly mirrored, stale, live, finished or stopped.

``health`` is called after the data is read, so that the files that could not be read count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from cvagents.durability.session import SessionStatus
from cvagents.ui.source import MANIFEST, Source, utc


class HealthState(StrEnum):
    """What a monitor's banner says about the folder it reads."""

    EMPTY = "empty"  # no run has written to it (or it does not exist)
    PARTIAL = "partial"  # files it lists could not be read yet (a mirror catching up, a torn copy)
    STALE = "stale"  # the session says it is running, but nothing changed for too long
    LIVE = "live"  # the session is running and changed lately
    FINISHED = "finished"  # the session held every meeting it was asked for
    STOPPED = "stopped"  # the session was stopped on request; re-running the coordinator resumes it


def latest_session(src: Source) -> tuple[str | None, dict | None]:
    """The newest session folder's name and its ``session.json`` (on disk, or listed by the mirror)."""
    sessions = src.paths.sessions
    listed = src.listed_folders(sessions, "session_")
    names = sorted({n for n in src.names(sessions, "session_", "") if "." not in n} | listed)
    for name in reversed(names):
        s = src.json(f"{sessions}/{name}/session.json")
        if s:
            return name, s
    return (names[-1], None) if names else (None, None)


@dataclass
class Health:
    """Whether there is anything to show, and how fresh it is."""

    state: HealthState
    message: str
    updated: datetime | None = None  # last change the run made that this copy shows (real time, UTC)
    is_mirror: bool = False
    missing: list[str] = field(default_factory=list)
    session: dict | None = None


def _last_change(src: Source, session_name: str | None) -> float | None:
    if src.is_mirror:
        w = (src.manifest or {}).get("written_at")
        t = utc(w)
        return t.tz_localize("UTC").timestamp() if t is not None else src.mtime(MANIFEST)
    p = src.paths
    cands = [src.mtime(p.rollout_state), src.mtime(p.metrics), src.mtime(p.handoff)]
    if session_name:
        folder = f"{p.sessions}/{session_name}"
        cands.append(src.mtime(f"{folder}/session.json"))
        segs = src.names(f"{folder}/trajectories", "segment_", ".jsonl")
        if segs:
            cands.append(src.mtime(f"{folder}/trajectories/{segs[-1]}"))
    known = [c for c in cands if c is not None]
    return max(known) if known else None


def stale_after(refresh_seconds: float, session: dict | None, heartbeat_minutes: float = 5.0) -> float:
    """Seconds without a change after which a running session counts as stale: two heartbeats
    of the run's clock in real time plus a minute (a live run writes at least once a heartbeat:
    11 min at time scale 1, 2 min at 10), but never less than three refresh intervals (a
    mirror is seen only that often) nor 90 s (the slowest step of the demo). The README's
    monitors section states the same rule."""
    scale = float((session or {}).get("time_scale") or 1.0)
    return max(3.0 * refresh_seconds, 2 * heartbeat_minutes * 60 / scale + 60, 90.0)


def _span(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.3g} min"


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def health(
    src: Source, *, refresh_seconds: float = 30, stale_after_s: float | None = None, now: float | None = None
) -> Health:
    """Call after reading the data, so that files that could not be read count."""
    name, session = latest_session(src)
    missing = sorted(set(src.missing))
    has_any = (
        src.is_mirror
        or name
        or src.names(src.paths.planning, "actions_", ".json")
        or src.path(src.paths.metrics).exists()
    )
    if not src.root.is_dir() or not has_any:
        where = "does not exist" if not src.root.is_dir() else "is empty"
        return Health(
            HealthState.EMPTY,
            f"The workspace {src.root} {where}: no run has written to it yet. Start the coordinator, or point this monitor at the run's workspace or its mirror folder.",
        )
    ts = _last_change(src, name)
    updated = datetime.fromtimestamp(ts, UTC) if ts else None
    now = now if now is not None else datetime.now(UTC).timestamp()
    age = (now - ts) if ts else None
    when = (
        f"last change {_ago(age)} ({updated:%Y-%m-%d %H:%M:%S} UTC, wall clock)"
        if age is not None
        else "no change recorded yet"
    )
    sid = (session or {}).get("session_id", "?")
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        what = (
            f"{len(missing)} file(s) MANIFEST.json lists have not arrived or are incomplete"
            if src.is_mirror
            else f"{len(missing)} file(s) could not be read"
        )
        return Health(
            HealthState.PARTIAL,
            f"Partly mirrored: {what} ({shown}); what is shown may lag. {when}.",
            updated,
            src.is_mirror,
            missing,
            session,
        )
    status = (session or {}).get("status")
    m = (session or {}).get("mirror") or {}
    if m.get("consecutive_failures"):
        when += f"; the mirror to {m.get('target')} is failing ({m['consecutive_failures']} in a row: {m.get('last_error')})"
    if status in (SessionStatus.FINISHED, SessionStatus.STOPPED):
        again = " Re-running the coordinator resumes it." if status == SessionStatus.STOPPED else ""
        s = session or {}
        return Health(
            HealthState(status),
            f"Session {sid} {status} after {s.get('meetings_held', '?')} meetings and {s.get('heartbeats', '?')} heartbeats; {when}.{again}",
            updated,
            src.is_mirror,
            [],
            session,
        )
    heartbeat = src.config.schedule.heartbeat_minutes
    limit = stale_after_s if stale_after_s is not None else stale_after(refresh_seconds, session, heartbeat)
    if age is None or age > limit:
        return Health(
            HealthState.STALE,
            f"Stale: {when}, while session {sid} says it is running (a live run changes something at least every {_span(limit)}). The run may have stopped (a Colab disconnect?): re-run the coordinator notebook to resume it{', or check the mirror' if src.is_mirror else ''}.",
            updated,
            src.is_mirror,
            [],
            session,
        )
    return Health(
        HealthState.LIVE,
        f"Live: session {sid}, {session.get('meetings_held', 0) if session else 0} meetings, {session.get('heartbeats', 0) if session else 0} heartbeats; {when}.",
        updated,
        src.is_mirror,
        [],
        session,
    )
