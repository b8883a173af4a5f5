"""``cvagents rebuild-reports``: everything under ``reports/`` rebuilt from a session's journal.

The reports are rendered from the very dicts the run journaled: each ``meeting_completed``
gives the meeting's transcript, summary, actions file and (for a completed meeting) the handoff;
each ``heartbeat_completed`` gives an ``execution_<time>.json`` and its lines of the day's
``deployments_<date>.log``; the last ``checkpoint`` gives ``rollout_state.json`` and
``costs.json``. Files are replaced atomically; the deployment logs are written whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cvagents.config import Settings, default_project_root
from cvagents.durability.atomic import atomic_write_json, atomic_write_text, read_json
from cvagents.durability.journal import Journal
from cvagents.durability.session import latest
from cvagents.errors import CVAgentsError
from cvagents.llm.cost import CostLedger
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
    ws = Workspace.from_config(Path(workspace), settings.coordination)
    sid = session_id or latest(ws.sessions_dir)
    if sid is None:
        raise RebuildError(f"{ws.sessions_dir}: no session with a journal")
    jdir = ws.sessions_dir / f"session_{sid}" / "trajectories"
    if journal is None and not jdir.is_dir():
        raise RebuildError(f"{jdir}: session {sid} has no journal")
    own = journal is None
    j = journal or Journal.open(jdir, read_only=True)
    counts = {"meetings": 0, "heartbeats": 0, "deployment_logs": 0, "state": 0, "first_seq": None, "last_seq": 0}
    logs: dict[Path, list[str]] = {}
    checkpoint = None
    decided: list[dict] = []
    try:
        for r in j.records(
            ("meeting_completed", "heartbeat_completed", "checkpoint", "rollout_decision"), include_archived=True
        ):
            if r.kind == "rollout_decision":
                decided.append(r.data)
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
        atomic_write_json(ws.reports_dir / "rollout_state.json", checkpoint["rollout_state"])
        counts["state"] = 1
    # reports/rollout/ is the rollout controller's own durable record (fsynced appends, read by
    # the gates): it is only put back when it is missing, never rewritten over a newer one.
    rdir = ws.reports_dir / "rollout"
    if decided and not (rdir / "decisions.jsonl").exists():
        atomic_write_text(
            rdir / "decisions.jsonl", "".join(json.dumps(d, ensure_ascii=False, default=str) + "\n" for d in decided)
        )
        counts["decisions"] = len(decided)
    if checkpoint is not None and checkpoint.get("controller") and not (rdir / "controller.json").exists():
        atomic_write_json(rdir / "controller.json", checkpoint["controller"])
    counts["session_id"] = sid
    counts["pruned_through_seq"] = pruned
    return counts
