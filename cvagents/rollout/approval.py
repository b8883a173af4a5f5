"""Human approval before a stage (``rollout.require_approval: [production]``).

An approval is a small JSON file under ``reports/rollout/approvals/``, written by ``cvagents
approve`` (or a dashboard button) and bound to one artifact's sha256: a later candidate needs
its own approval. Until the version waiting in the previous stage is approved, a deployment to
the stage is refused with "awaiting approval" and the run holds at that step.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cvagents.durability.atomic import atomic_write_json, read_json
from cvagents.errors import CVAgentsError
from cvagents.rollout import deployment


class ApprovalError(CVAgentsError, ValueError):
    """The approval names no stage, or no candidate is waiting for it."""


def approvals_dir(ws) -> Path:
    return ws.approvals_dir


def approval_file(ws, stage: str, sha: str) -> Path:
    return approvals_dir(ws) / f"{stage}_{sha[:16]}.json"


def required(cfg, stage: str) -> bool:
    return stage in cfg.rollout.require_approval


def approval(ws, stage: str, sha: str | None) -> dict[str, Any] | None:
    """The approval of artifact ``sha`` for ``stage``, if a human gave one."""
    if not sha:
        return None
    rec = read_json(approval_file(ws, stage, sha))
    return rec if rec and rec.get("sha256") == sha and rec.get("approved") else None


def awaiting(ws, cfg, stage: str, sha: str | None) -> bool:
    return required(cfg, stage) and approval(ws, stage, sha) is None


def candidate_for(ws, cfg, stage: str) -> dict[str, Any] | None:
    """The version that a promotion to ``stage`` would deploy: the one live in the stage before."""
    names = list(cfg.rollout.stages)
    i = names.index(stage)
    if i == 0:
        return None
    return deployment.live(ws.stage_dir(names[i - 1]))


def login_name(given: str | None = None) -> str:
    """Who acts (approves, submits): ``given``, else the login name, else "unknown" (some
    containers have none)."""
    try:
        return given or getpass.getuser()
    except (KeyError, OSError, ImportError):
        return "unknown"


def approve(
    ws, cfg, stage: str, *, sha: str | None = None, by: str | None = None, note: str = "", time: str | None = None
) -> dict[str, Any]:
    """Record a human's yes for promoting a version to ``stage``. ``sha`` (full or a prefix of
    the candidate's) defaults to the version live in the previous stage."""
    if stage not in cfg.rollout.stages:
        raise ApprovalError(f"unknown stage {stage!r}; stages are {', '.join(cfg.rollout.stages)}")
    cand = candidate_for(ws, cfg, stage)
    if sha is None or len(sha) < 64:
        if not cand:
            raise ApprovalError(
                f"nothing is live in the stage before {stage}: no candidate to approve (pass the full --sha)"
            )
        if sha and not cand["sha256"].startswith(sha.lower()):
            raise ApprovalError(f"--sha {sha} is not the candidate waiting for {stage} ({cand['sha256'][:12]})")
        sha = cand["sha256"]
    user = login_name(by)
    rec = {
        "approved": True,
        "stage": stage,
        "sha256": sha,
        "version": cand["version"] if cand and cand["sha256"] == sha else None,
        "approved_by": user,
        "time": time or datetime.now(UTC).isoformat(timespec="seconds"),
        "note": note,
        "required": required(cfg, stage),
    }
    atomic_write_json(approval_file(ws, stage, sha), rec)
    return rec


def all_approvals(ws) -> list[dict[str, Any]]:
    d = approvals_dir(ws)
    return [r for r in (read_json(p) for p in sorted(d.glob("*.json"))) if r] if d.is_dir() else []
