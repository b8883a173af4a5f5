"""``cvagents rebuild-reports``: everything under ``reports/`` rebuilt from a session's journal.

The reports are rendered from the very dicts the run journaled: each ``meeting_completed``
gives the meeting's transcript, summary, actions file and (for a completed meeting) the handoff;
each ``heartbeat_completed`` gives an ``execution_<time>.json`` and its lines of the day's
``deployments_<date>.log``; each ``rollout_decision`` a line of ``rollout/decisions.jsonl`` (and,
for an automatic rollback, its line of the deployments log; for an approval seen, the approval
file when it is gone); the last ``checkpoint`` gives ``rollout_state.json``, ``costs.json`` and
``rollout/controller.json``. The handoff's README and template come from the project. Files are
replaced atomically; the deployment logs are written whole.

The workspace's layout is the one its run left (``Workspace.open``); ``settings`` only fill in
for a workspace written before it did.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cvagents.config import Settings, default_project_root
from cvagents.durability.atomic import atomic_write_json, atomic_write_text, read_json
from cvagents.durability.journal import Journal, Record
from cvagents.durability.session import latest
from cvagents.errors import CVAgentsError
from cvagents.llm.cost import CostLedger
from cvagents.rollout import approval, controller, decisions, deployments_log
from cvagents.run import reports
from cvagents.workspace import Workspace


class RebuildError(CVAgentsError, ValueError):
    """There is no session, or no journal, to rebuild the reports from."""


def rebuild_reports(
    workspace: Path | str,
    session_id: str | None = None,
    *,
    settings: Settings | None = None,
    journal: Journal | None = None,
) -> dict[str, Any]:
    """Rewrite the session's reports from its journal; returns what was written.

    ``journal``: an open journal of the session (the running coordinator's); otherwise the
    session's journal is opened read-only, so this also works beside a live run.
    """
    settings = settings or Settings(default_project_root())
    ws = Workspace.open(Path(workspace), settings.coordination)
    sid = session_id or latest(ws.sessions_dir)
    if sid is None:
        raise RebuildError(f"{ws.sessions_dir}: no session with a journal")
    jdir = ws.sessions_dir / f"session_{sid}" / "trajectories"
    if journal is None and not jdir.is_dir():
        raise RebuildError(f"{jdir}: session {sid} has no journal")
    own = journal is None
    j = journal or Journal.open(jdir, read_only=True)
    counts: dict[str, Any] = {
        "meetings": 0,
        "heartbeats": 0,
        "deployment_logs": 0,
        "state": 0,
        "decisions": 0,
        "first_seq": None,
        "last_seq": 0,
    }
    logs: dict[Path, list[str]] = {}
    checkpoint = None
    decided: list[Record] = []
    try:
        for r in j.records(
            ("meeting_completed", "heartbeat_completed", "checkpoint", decisions.JOURNAL_KIND), include_archived=True
        ):
            if r.kind == decisions.JOURNAL_KIND:
                decided.append(r)
                lines = deployments_log.controller_lines(r.data)
                if lines:
                    path = deployments_log.log_path(ws.execution_dir, deployments_log.decision_time(r.data))
                    logs.setdefault(path, []).extend(lines)
                continue
            if counts["first_seq"] is None:
                counts["first_seq"] = r.seq
            counts["last_seq"] = r.seq
            if r.kind == "meeting_completed":
                reports.write_meeting(ws, r.data)
                counts["meetings"] += 1
            elif r.kind == "heartbeat_completed":
                reports.write_execution(ws, r.data)
                lines = reports.deployment_lines(r.data)
                if lines:
                    logs.setdefault(reports.deployments_log_path(ws, r.data), []).extend(lines)
                counts["heartbeats"] += 1
            else:
                checkpoint = r.data
    finally:
        if own:
            j.close()
    pruned = (read_json(jdir / "index.json") or {}).get("pruned_through_seq", 0)
    for n, (path, lines) in enumerate(logs.items()):
        if pruned and n == 0 and path.exists():
            continue  # its first lines were in segments the retention rule deleted: keep the file
        atomic_write_text(path, "\n".join(lines) + "\n")
        counts["deployment_logs"] += 1
    if checkpoint is not None:
        ledger = CostLedger(settings.meeting.budgets)
        ledger.restore(checkpoint["ledger"])
        reports.write_costs(ws, ledger)
        atomic_write_json(ws.rollout_state_file, checkpoint["rollout_state"])
        if checkpoint.get("controller"):
            controller.write_state(ws, checkpoint["controller"])
        counts["state"] = 1
    if decided or ws.decisions_file.exists():
        counts["decisions"] = decisions.rebuild(ws, decided)
    for d in decisions.journaled(decided):
        a = d.get("approval")
        if d.get("kind") == "approved" and isinstance(a, dict) and a.get("sha256"):
            path = approval.approval_file(ws, a["stage"], a["sha256"])
            if not path.exists():  # a human's record: never rewritten over a newer one
                atomic_write_json(path, a)
    ws.ship_handoff_docs(settings.project_root)
    counts["session_id"] = sid
    counts["pruned_through_seq"] = pruned
    return counts


def catch_up(ws: Workspace, journal: Journal, since_seq: int) -> int:
    """On resume: render the rollout decisions journaled after ``since_seq`` (the last
    checkpoint) that a kill kept out of the reports — their lines of decisions.jsonl and, for an
    automatic rollback, of the deployments log. Returns how many lines were added."""
    tail = list(journal.records(decisions.JOURNAL_KIND, since_seq, include_archived=True))
    added = len(decisions.catch_up(ws, tail))
    for r in tail:
        lines = deployments_log.controller_lines(r.data)
        when = deployments_log.decision_time(r.data)
        if lines and not deployments_log.has_lines(ws.execution_dir, when, lines):
            deployments_log.append(ws.execution_dir, when, lines)
            added += len(lines)
    return added
