"""What the monitor dashboards show, read from a workspace (local, or a mirrored copy on Drive).

Pure functions, no widgets: each returns plain dicts and pandas DataFrames. Every reader looks
at the newest N files of a folder only, so a refresh costs what it shows, however long the run
has been going. Nothing here raises on a half-synced file: a file that cannot be read is noted
in ``Source.missing`` and the dashboard says the copy is partly mirrored.

A folder holding ``MANIFEST.json`` at its top is a mirror (see ``cvagents.durability.mirror``): files it
lists may not have reached this machine yet (Google Drive lags), and its ``written_at`` says
when the run last changed anything.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

MANIFEST = "MANIFEST.json"
METRICS = "runs/report/metrics.json"
ROLLOUT = "reports/rollout_state.json"
COSTS = "reports/costs.json"
CONTROLLER = "reports/rollout/controller.json"
DECISIONS = "reports/rollout/decisions.jsonl"
HANDOFF = "reports/handoff/pending_actions.json"
PLANNING = "reports/planning"
EXECUTION = "reports/execution"
SESSIONS = "sessions"
LOG = "executive.log"
DEFAULT_THRESHOLDS = {
    "ndcg_at_10_min": 0.72,
    "latency_p95_ms_max": 50.0,
    "slo_compliance_min": 0.99,
    "p0_incidents_max": 0,
}
STATUSES = ("succeeded", "failed", "refused")
HEARTBEAT_MINUTES = 5.0  # the guide's heartbeat, for the staleness allowance


def _parse_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


# Repeated refreshes re-read what changed only: a file's parsed content and a folder's listing are
# kept while its (mtime, size) stays the same. Bounded: one entry per file or folder read.
_CACHE: dict[str, tuple[tuple, Any]] = {}
_CACHE_MAX = 2048


def _stamp(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _cached(path: Path, compute) -> Any:
    key, stamp = str(path), _stamp(path)
    if stamp is None:
        return compute()
    hit = _CACHE.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    value = compute()
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[key] = (stamp, value)
    return value


def _utc(s: Any) -> pd.Timestamp | None:
    """A run's timestamp (naive stamps are the run's UTC clock) as a naive UTC Timestamp."""
    if not s:
        return None
    try:
        t = pd.Timestamp(s)
    except (ValueError, TypeError):
        return None
    return t.tz_convert("UTC").tz_localize(None) if t.tzinfo else t


def _listdir(path: Path) -> tuple[str, ...]:
    try:
        with os.scandir(path) as it:
            return tuple(e.name for e in it)
    except OSError:
        return ()


def short_time(s: Any) -> str:
    """``2025-10-13T20:00:00.123+00:00`` -> ``2025-10-13 20:00:00`` (the run's clock, UTC)."""
    t = _utc(s)
    return t.strftime("%Y-%m-%d %H:%M:%S") if t is not None else ("" if s is None else str(s))


def _read_manifest(path: Path) -> tuple[dict | None, dict[str, set[str]]]:
    """The mirror's manifest, and folder -> names of the files it lists there."""
    manifest = _parse_json(path)
    listed: dict[str, set[str]] = {}
    for rel in (manifest or {}).get("files", {}):
        folder, _, name = rel.rpartition("/")
        listed.setdefault(folder, set()).add(name)
    return manifest, listed


class Source:
    """A workspace folder, or a mirror of one; remembers which files it could not read."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser()
        self.missing: list[str] = []
        mf = self.root / MANIFEST
        self.is_mirror = mf.exists()
        self.manifest, self._listed = _cached(mf, lambda: _read_manifest(mf)) if self.is_mirror else (None, {})
        self._prefix = self._mirror_prefixes()

    def _mirror_prefixes(self) -> dict[str, str]:
        """The mirror names each source folder; ``runs/report`` may be mirrored as ``report``."""
        out = {}
        if self._listed and not any(f == "runs/report" or f.startswith("runs/report/") for f in self._listed):
            if any(f == "report" or f.startswith("report/") for f in self._listed):
                out["runs/report"] = "report"
        return out

    def _rel(self, rel: str) -> str:
        for a, b in self._prefix.items():
            if rel == a or rel.startswith(a + "/"):
                return b + rel[len(a) :]
        return rel

    def path(self, rel: str) -> Path:
        return self.root / self._rel(rel)

    def listed(self, rel: str) -> bool:
        folder, _, name = self._rel(rel).rpartition("/")
        return name in self._listed.get(folder, ())

    def json(self, rel: str) -> Any:
        """A JSON file's content, or None (noted as missing when the manifest lists it).
        Callers must not modify it: an unchanged file's content is shared between refreshes."""
        path = self.path(rel)
        data = _cached(path, lambda: _parse_json(path))
        if data is None and (self.listed(rel) or self.path(rel).exists()):
            self.missing.append(rel)
        return data

    def names(self, folder: str, prefix: str, suffix: str) -> list[str]:
        """File names in ``folder`` (on disk, or listed by the manifest), oldest first by name."""
        path = self.path(folder)
        on_disk = _cached(path, lambda: _listdir(path))  # a folder's mtime changes when a file is added
        found = {n for n in on_disk if n.startswith(prefix) and n.endswith(suffix)}
        found |= {n for n in self._listed.get(self._rel(folder), ()) if n.startswith(prefix) and n.endswith(suffix)}
        return sorted(found)

    def newest_json(self, folder: str, prefix: str, n: int, after: str | None = None) -> list[tuple[str, Any]]:
        """``(name, content)`` of the newest ``n`` JSON files (names sort by time), oldest first."""
        names = self.names(folder, prefix, ".json")
        if after is not None:
            names = [x for x in names if x > after]
        out = []
        for name in names[-n:] if n else []:
            data = self.json(f"{folder}/{name}")
            if data is not None:
                out.append((name, data))
        return out

    def tail_lines(self, rel: str, n: int, max_bytes: int = 65536) -> list[str]:
        """The last ``n`` lines of a text file, reading at most ``max_bytes`` from its end."""
        try:
            with open(self.path(rel), "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - max_bytes))
                data = f.read()
        except OSError:
            return []
        lines = data.decode("utf-8", "replace").splitlines()
        if size > max_bytes:
            lines = lines[1:]  # the first line is probably cut
        return lines[-n:]

    def mtime(self, rel: str) -> float | None:
        try:
            return self.path(rel).stat().st_mtime
        except OSError:
            return None


# --------------------------------------------------------------------------- the run's state


def latest_session(src: Source) -> tuple[str | None, dict | None]:
    """The newest session folder's name and its ``session.json`` (on disk, or listed by the mirror)."""
    listed = {f.split("/")[1] for f in src._listed if f.startswith(SESSIONS + "/session_")}
    names = sorted({n for n in src.names(SESSIONS, "session_", "") if "." not in n} | listed)
    for name in reversed(names):
        s = src.json(f"{SESSIONS}/{name}/session.json")
        if s:
            return name, s
    return (names[-1], None) if names else (None, None)


@dataclass
class Health:
    """Whether there is anything to show, and how fresh it is."""

    state: str  # "empty" | "partial" | "stale" | "live" | "finished" | "stopped"
    message: str
    updated: datetime | None = None  # last change the run made that this copy shows (real time, UTC)
    is_mirror: bool = False
    missing: list[str] = field(default_factory=list)
    session: dict | None = None


def _last_change(src: Source, session_name: str | None) -> float | None:
    if src.is_mirror:
        w = (src.manifest or {}).get("written_at")
        t = _utc(w)
        return t.tz_localize("UTC").timestamp() if t is not None else src.mtime(MANIFEST)
    cands = [src.mtime(ROLLOUT), src.mtime(METRICS), src.mtime(HANDOFF)]
    if session_name:
        folder = f"{SESSIONS}/{session_name}"
        cands.append(src.mtime(f"{folder}/session.json"))
        segs = src.names(f"{folder}/trajectories", "segment_", ".jsonl")
        if segs:
            cands.append(src.mtime(f"{folder}/trajectories/{segs[-1]}"))
    cands = [c for c in cands if c is not None]
    return max(cands) if cands else None


def stale_after(refresh_seconds: float, session: dict | None) -> float:
    """A few refresh intervals, and never less than two heartbeats of the run's clock (a run in
    real time legitimately writes nothing for five minutes between heartbeats)."""
    scale = float((session or {}).get("time_scale") or 1.0)
    return max(3.0 * refresh_seconds, 2 * HEARTBEAT_MINUTES * 60 / scale + 60, 90.0)


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
    has_any = src.is_mirror or name or src.names(PLANNING, "actions_", ".json") or src.path(METRICS).exists()
    if not src.root.is_dir() or not has_any:
        where = "does not exist" if not src.root.is_dir() else "is empty"
        return Health(
            "empty",
            f"The workspace {src.root} {where}: no run has written to it yet. Start the coordinator, or point this monitor at the run's workspace or its mirror folder.",
        )
    ts = _last_change(src, name)
    updated = datetime.fromtimestamp(ts, UTC) if ts else None
    now = now if now is not None else datetime.now(UTC).timestamp()
    age = (now - ts) if ts else None
    when = f"last change {_ago(age)} ({updated:%Y-%m-%d %H:%M:%S} UTC)" if age is not None else "no change recorded yet"
    sid = (session or {}).get("session_id", "?")
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        what = (
            f"{len(missing)} file(s) MANIFEST.json lists have not arrived or are incomplete"
            if src.is_mirror
            else f"{len(missing)} file(s) could not be read"
        )
        return Health(
            "partial",
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
    if status in ("finished", "stopped"):
        again = " Re-running the coordinator resumes it." if status == "stopped" else ""
        return Health(
            status,
            f"Session {sid} {status} after {session.get('meetings_held', '?')} meetings and {session.get('heartbeats', '?')} heartbeats; {when}.{again}",
            updated,
            src.is_mirror,
            [],
            session,
        )
    limit = stale_after_s if stale_after_s is not None else stale_after(refresh_seconds, session)
    if age is None or age > limit:
        return Health(
            "stale",
            f"Stale: {when}, while session {sid} says it is running. The run may have stopped (a Colab disconnect?): re-run the coordinator notebook to resume it{', or check the mirror' if src.is_mirror else ''}.",
            updated,
            src.is_mirror,
            [],
            session,
        )
    return Health(
        "live",
        f"Live: session {sid}, {session.get('meetings_held', 0) if session else 0} meetings, {session.get('heartbeats', 0) if session else 0} heartbeats; {when}.",
        updated,
        src.is_mirror,
        [],
        session,
    )


# --------------------------------------------------------------------------- planning


def recent_meetings(src: Source, n: int = 10) -> list[dict]:
    """The newest ``n`` meetings' actions files, oldest first."""
    return [d for _, d in src.newest_json(PLANNING, "actions_", n)]


def meetings_table(meetings: list[dict]) -> pd.DataFrame:
    rows = []
    for m in reversed(meetings):
        g = m.get("go_no_go") or {}
        rows.append(
            {
                "meeting": m.get("meeting_id"),
                "time": short_time(m.get("timestamp")),
                "status": m.get("status"),
                "agents": len(m.get("participants") or []),
                "absent": len(m.get("absent") or {}),
                "actions": m.get("count", len(m.get("actions") or [])),
                "go/no-go": f"{g.get('stage')}: {g.get('decision')}" if g else "—",
                "decisions": "; ".join(d.get("decision", "") for d in m.get("decisions") or []),
            }
        )
    return pd.DataFrame(
        rows, columns=["meeting", "time", "status", "agents", "absent", "actions", "go/no-go", "decisions"]
    )


def decisions_table(meeting: dict | None) -> pd.DataFrame:
    rows = [
        {"decision": d.get("decision"), "rationale": d.get("rationale")} for d in (meeting or {}).get("decisions") or []
    ]
    return pd.DataFrame(rows, columns=["decision", "rationale"])


def action_status(src: Source, meeting_id: str, n: int = 60) -> dict[str, dict]:
    """``action_id`` -> the executive's record of it, from heartbeats since that meeting."""
    stamp = meeting_id.removeprefix("meeting_")
    out: dict[str, dict] = {}
    for _, rec in src.newest_json(EXECUTION, "execution_", n, after=f"execution_{stamp}"):
        for a in rec.get("actions") or []:
            out[a.get("action_id")] = {**a, "heartbeat": rec.get("timestamp")}
    return out


def action_table(src: Source, meetings: list[dict]) -> tuple[str | None, pd.DataFrame]:
    """The plan the executives are working on (the handoff), with each action's status."""
    plan = src.json(HANDOFF)
    if not plan:
        plan = next((m for m in reversed(meetings) if m.get("actions")), None)
    cols = ["id", "priority", "owner", "action", "status", "tool", "done at", "estimated", "success criteria"]
    if not plan:
        return None, pd.DataFrame(columns=cols)
    mid = plan.get("meeting_id")
    done = action_status(src, mid) if mid else {}
    rows = []
    for a in plan.get("actions") or []:
        d = done.get(f"{mid}#{a.get('id')}", {})
        rows.append(
            {
                "id": a.get("id"),
                "priority": a.get("priority"),
                "owner": a.get("owner"),
                "action": a.get("action"),
                "status": d.get("status", "pending"),
                "tool": d.get("tool") or "",
                "done at": short_time(d.get("heartbeat")),
                "estimated": a.get("estimated_duration"),
                "success criteria": a.get("success_criteria"),
            }
        )
    return mid, pd.DataFrame(rows, columns=cols)


def participation(meetings: list[dict]) -> pd.DataFrame:
    """Agents × meetings: "✓" spoke, the error when absent, "" when not in that meeting."""
    cols: dict[str, dict[str, str]] = {}
    for m in meetings:
        col = {a: "✓" for a in m.get("participants") or []}
        col.update({a: f"absent: {e}" for a, e in (m.get("absent") or {}).items()})
        cols[m.get("meeting_id", "?")] = col
    df = pd.DataFrame(cols).fillna("")
    return df.sort_index() if len(df) else df


def tokens_by_agent(src: Source, meetings: list[dict]) -> tuple[str, pd.DataFrame]:
    """Tokens and cost per agent for the whole run (``reports/costs.json``), or summed over the
    meetings shown when the run wrote no ledger."""
    cols = ["agent", "input_tokens", "output_tokens", "cached_tokens", "cost_usd"]
    costs = src.json(COSTS)
    rows: dict[str, dict] = {}
    if costs and costs.get("usage_by_agent"):
        scope = "whole run"
        for a, u in costs["usage_by_agent"].items():
            rows[a] = {
                "agent": a,
                **{k: u.get(k, 0) for k in cols[1:4]},
                "cost_usd": costs.get("by_agent", {}).get(a, 0.0),
            }
    else:
        scope = f"last {len(meetings)} meetings"
        for m in meetings:
            for a, u in (m.get("usage_by_agent") or {}).items():
                r = rows.setdefault(
                    a, {"agent": a, "input_tokens": 0, "output_tokens": 0, "cached_tokens": 0, "cost_usd": 0.0}
                )
                for k in cols[1:4]:
                    r[k] += u.get(k, 0)
                r["cost_usd"] += (m.get("cost_by_agent") or {}).get(a, 0.0)
    df = pd.DataFrame(list(rows.values()), columns=cols)
    if len(df):
        df = df.sort_values(["input_tokens", "agent"], ascending=[False, True], ignore_index=True)
    return scope, df


def planning_data(src: Source, *, meetings: int = 10) -> dict[str, Any]:
    ms = recent_meetings(src, meetings)
    plan_id, actions = action_table(src, ms)
    scope, tokens = tokens_by_agent(src, ms)
    return {
        "meetings": meetings_table(ms),
        "latest": ms[-1] if ms else None,
        "decisions": decisions_table(ms[-1] if ms else None),
        "plan_meeting": plan_id,
        "actions": actions,
        "participation": participation(ms),
        "tokens_scope": scope,
        "tokens": tokens,
    }


# --------------------------------------------------------------------------- execution


def executions_table(heartbeats: list[dict]) -> pd.DataFrame:
    rows = []
    for hb in heartbeats:
        for e in hb.get("executions") or []:
            rows.append(
                {
                    "time": short_time(hb.get("timestamp")),
                    "heartbeat": hb.get("heartbeat"),
                    "agent": e.get("agent"),
                    "action_id": e.get("action_id"),
                    "tool": e.get("tool") or "—",
                    "status": e.get("status"),
                    "duration_s": e.get("duration_s"),
                    "detail": _detail(e),
                }
            )
    return pd.DataFrame(
        rows, columns=["time", "heartbeat", "agent", "action_id", "tool", "status", "duration_s", "detail"]
    )


def _detail(e: dict) -> str:
    r = e.get("result") if isinstance(e.get("result"), dict) else {}
    for k in ("reason", "error"):
        if r.get(k):
            return str(r[k])[:160]
    if r.get("version"):
        return f"{r.get('stage', '')} {r['version']}".strip()
    if r.get("ndcg_at_10") is not None:
        return f"NDCG@10 {r['ndcg_at_10']:.4f}, P95 {r.get('latency_p95_ms')} ms"
    return ""


def per_heartbeat(heartbeats: list[dict]) -> pd.DataFrame:
    """Succeeded / failed / refused tool executions per heartbeat."""
    rows = []
    for hb in heartbeats:
        c = {s: 0 for s in STATUSES}
        for e in hb.get("executions") or []:
            if e.get("status") in c:
                c[e["status"]] += 1
        rows.append({"time": _utc(hb.get("timestamp")), "heartbeat": hb.get("heartbeat"), **c})
    return pd.DataFrame(rows, columns=["time", "heartbeat", *STATUSES])


def metrics_history(metrics: dict | None, points: int = 200) -> pd.DataFrame:
    """The newest ``points`` records of ``history``: NDCG@10 with its 95 % CI, P95 latency, SLO
    compliance (a record has the metrics its source measures; the others are NaN)."""
    cols = [
        "time",
        "kind",
        "stage",
        "version",
        "ndcg_at_10",
        "ci_low",
        "ci_high",
        "latency_p95_ms",
        "slo_compliance",
        "p0_incidents",
    ]
    rows = []
    for r in ((metrics or {}).get("history") or [])[-points:]:
        kind = r.get("kind", "evaluation")
        # an evaluation measures NDCG and latency; a traffic replay measures SLO compliance and
        # incidents (and may repeat the evaluation's figures, which are not plotted twice)
        measured = {} if kind == "traffic" else r
        ci = measured.get("ndcg_at_10_ci95") or [None, None]
        rows.append(
            {
                "time": _utc(r.get("time") or r.get("last_time")),
                "kind": kind,
                "stage": r.get("stage"),
                "version": r.get("version"),
                "ndcg_at_10": measured.get("ndcg_at_10"),
                "ci_low": ci[0],
                "ci_high": ci[1],
                "latency_p95_ms": measured.get("latency_p95_ms"),
                "slo_compliance": r.get("slo_compliance"),
                "p0_incidents": r.get("p0_incidents"),
            }
        )
    df = pd.DataFrame(rows, columns=cols)
    return df.sort_values("time", kind="stable", ignore_index=True) if len(df) else df


def deployments_table(rollout: dict | None, controller: dict | None = None) -> pd.DataFrame:
    """Each stage, its share of traffic, the version live in it and the controller's view of it."""
    rows = []
    stages = (rollout or {}).get("stages") or {}
    plan = (rollout or {}).get("plan") or {}
    ctl = (controller or {}).get("stages") or {}
    current = ((rollout or {}).get("current") or {}).get("stage")
    for stage in (rollout or {}).get("stages_order") or list(stages):
        live = stages.get(stage)
        share = (plan.get(stage) or {}).get("traffic")
        rows.append(
            {
                "stage": stage,
                "traffic": "—" if share is None else f"{share:.0%}",
                "live version": (live or {}).get("version") or "—",
                "sha256": ((live or {}).get("sha256") or "")[:12] or "—",
                "status": (ctl.get(stage) or {}).get("status") or ("deployed" if live else ""),
                "current": "◀ current" if stage == current else "",
            }
        )
    return pd.DataFrame(rows, columns=["stage", "traffic", "live version", "sha256", "status", "current"])


def controller_decisions(src: Source, rollout: dict | None, n: int = 8) -> pd.DataFrame:
    """The rollout controller's latest decisions (promotion, rollback, pause, gates passed, …),
    newest first: from the state snapshot, or the tail of ``reports/rollout/decisions.jsonl``."""
    recent = ((rollout or {}).get("rollout") or {}).get("recent_decisions")
    if recent is None:
        recent = []
        for line in src.tail_lines(DECISIONS, n):
            try:
                recent.append(json.loads(line))
            except ValueError:
                pass  # a line the mirror has not finished copying
    rows = [
        {**{k: d.get(k) for k in ("kind", "stage", "outcome", "reason")}, "time": short_time(d.get("time"))}
        for d in recent[-n:]
    ]
    return pd.DataFrame(rows[::-1], columns=["time", "kind", "stage", "outcome", "reason"])


def gates_table(rollout: dict | None) -> pd.DataFrame:
    cur = (rollout or {}).get("current") or {}
    rows = [
        {"gate": g.get("gate"), "status": g.get("status"), "value": g.get("value"), "threshold": g.get("threshold")}
        for g in cur.get("gates") or []
    ]
    return pd.DataFrame(rows, columns=["gate", "status", "value", "threshold"])


def go_no_go(meetings: list[dict]) -> pd.DataFrame:
    rows = [
        {
            "meeting": m.get("meeting_id"),
            "time": short_time(m.get("timestamp")),
            "stage": g.get("stage"),
            "decision": g.get("decision"),
            "reason": g.get("reason"),
        }
        for m in reversed(meetings)
        if (g := m.get("go_no_go"))
    ]
    return pd.DataFrame(rows, columns=["meeting", "time", "stage", "decision", "reason"])


_GATE_KEYS = {
    "ndcg_at_10": "ndcg_at_10_min",
    "latency_p95_ms": "latency_p95_ms_max",
    "slo_compliance": "slo_compliance_min",
    "p0_incidents": "p0_incidents_max",
}


def thresholds(rollout: dict | None) -> dict[str, Any]:
    """The gate thresholds to draw: the defaults, then the state's ``thresholds``, then what the
    current stage's gates say (``">= 0.72 (lower bound…)"``), which is what was applied."""
    out = {
        **DEFAULT_THRESHOLDS,
        **{k: v for k, v in ((rollout or {}).get("thresholds") or {}).items() if not isinstance(v, dict)},
    }
    for g in ((rollout or {}).get("current") or {}).get("gates") or []:
        key = _GATE_KEYS.get(g.get("gate"))
        words = str(g.get("threshold") or "").split()
        if key and len(words) >= 2:
            try:
                out[key] = float(words[1])
            except ValueError:
                pass
    return out


def execution_data(
    src: Source, *, heartbeats: int = 24, points: int = 200, meetings: int = 5, log_lines: int = 12
) -> dict[str, Any]:
    hbs = [d for _, d in src.newest_json(EXECUTION, "execution_", heartbeats)]
    execs = executions_table(hbs)
    rollout = src.json(ROLLOUT)
    metrics = src.json(METRICS)
    logs = src.names(EXECUTION, "deployments_", ".log")
    return {
        "heartbeats": len(hbs),
        "executions": execs,
        "counts": {s: int((execs["status"] == s).sum()) for s in STATUSES},
        "per_heartbeat": per_heartbeat(hbs),
        "metrics": metrics_history(metrics, points),
        "latest_metrics": (metrics or {}).get("latest"),
        "rollout": rollout,
        "thresholds": thresholds(rollout),
        "deployments": deployments_table(
            rollout, src.json(CONTROLLER) if src.path(CONTROLLER).exists() or src.listed(CONTROLLER) else None
        ),
        "decisions": controller_decisions(src, rollout),
        "paused": ((rollout or {}).get("rollout") or {}).get("paused"),
        "deploy_log": src.tail_lines(f"{EXECUTION}/{logs[-1]}", 10) if logs else [],
        "gates": gates_table(rollout),
        "go_no_go": go_no_go(recent_meetings(src, meetings)),
        "log_tail": src.tail_lines(LOG, log_lines),
    }


def meeting_history(workspace: str | os.PathLike) -> pd.DataFrame:
    """Every meeting of the run, oldest first (the unified notebook's complete history; unlike
    the dashboards this reads them all)."""
    src = Source(workspace)
    ms = [d for _, d in src.newest_json(PLANNING, "actions_", 10**9)]
    return meetings_table(ms).iloc[::-1].reset_index(drop=True)
