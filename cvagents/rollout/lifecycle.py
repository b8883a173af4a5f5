"""V1 → V2: what became of each candidate, derived from the registry, the stage pointers and
the gates (nothing here is stored, so it cannot disagree with them).

- the **champion** is the version live in the last stage (production); the version it replaced
  there stays the rollback target;
- a candidate is ``rejected`` once a gate failed for it anywhere (it is never deployed again),
  ``in_rollout`` while it is live in an earlier stage, ``retired`` once it served production and
  was replaced, and ``waiting`` before its first deployment;
- the **active candidate** is the one the agents work on: the one in rollout furthest along, else
  the earliest waiting one.

The guide's model file (``research/v1_production.pth``), when nobody submitted it, is an implicit
candidate named ``v1``, so a workspace laid out as in the guide rolls out as before.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from cvagents.config import CoordinationConfig
from cvagents.durability.atomic import read_json
from cvagents.durability.hashing import sha256_file
from cvagents.models import registry
from cvagents.rollout import deployment, metrics_store
from cvagents.rollout.controller import rejected_shas
from cvagents.workspace import Workspace

IMPLICIT_NAME = "v1"


class ModelStatus(StrEnum):
    """What became of a submitted candidate."""

    CHAMPION = "champion"  # live in production
    IN_ROLLOUT = "in_rollout"  # live in a stage before production, no gate failed
    WAITING = "waiting"  # submitted, not deployed yet (or rolled back for a reason other than a gate)
    REJECTED = "rejected"  # a gate failed for it: never deployed again
    RETIRED = "retired"  # served production once, since replaced by a newer champion


def adapter_for(ws: Workspace, cfg: CoordinationConfig, sha: str | None) -> str:
    """The adapter that loads the artifact ``sha``: its candidate's own, else ``serving.adapter``."""
    e = registry.by_sha(ws, sha) if sha else None
    return (e or {}).get("adapter") or cfg.serving.adapter


def _implicit(ws: Workspace, known: set[str]) -> dict[str, Any] | None:
    if not ws.model_file.is_file():
        return None
    sha = sha256_file(ws.model_file)
    if sha in known:
        return None
    return {
        "name": IMPLICIT_NAME,
        "seq": 0,
        "sha256": sha,
        "path": ws.rel(ws.model_file),
        "adapter": None,
        "source": {"kind": "file"},
        "time": None,
        "submitted_by": None,
        "implicit": True,
    }


def candidates(
    ws: Workspace,
    cfg: CoordinationConfig,
    metrics: dict[str, Any] | None = None,
    rejected: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Every candidate with its ``status``, the stages it is live in (``stages``), the furthest of
    them (``stage``) and, when rejected, why (``rejected_reason``); in submission order.
    ``rejected``: ``controller.rejected_shas`` when the caller has it already."""
    metrics = metrics if metrics is not None else metrics_store.load(ws.metrics_file)
    found = registry.entries(ws)
    implicit = _implicit(ws, {e["sha256"] for e in found})
    if implicit:
        found = [implicit, *found]
    rejected = rejected if rejected is not None else rejected_shas(ws, cfg, metrics)
    stages = list(cfg.rollout.stages)
    lives = {s: deployment.live(ws.stage_dir(s)) for s in stages}
    prod_dir = ws.stage_dir(stages[-1])
    ever_in_prod = {v["sha256"] for v in deployment.versions(prod_dir)}
    out = []
    for e in found:
        sha = e["sha256"]
        live_in = [s for s in stages if (lives[s] or {}).get("sha256") == sha]
        if sha in rejected:
            status = ModelStatus.REJECTED
        elif live_in and live_in[-1] == stages[-1]:
            status = ModelStatus.CHAMPION
        elif live_in:
            status = ModelStatus.IN_ROLLOUT
        elif sha in ever_in_prod:
            status = ModelStatus.RETIRED
        else:
            status = ModelStatus.WAITING
        out.append(
            {
                **e,
                "status": status,
                "stages": live_in,
                "stage": live_in[-1] if live_in else None,
                "rejected_reason": rejected.get(sha),
            }
        )
    return out


def active_candidate(cands: list[dict[str, Any]], cfg: CoordinationConfig) -> dict[str, Any] | None:
    """The candidate the agents work on: in rollout furthest along (the newest on a tie), else the
    earliest waiting one; None when there is none."""
    order = list(cfg.rollout.stages)
    rolling = [c for c in cands if c["status"] == ModelStatus.IN_ROLLOUT]
    if rolling:
        return max(rolling, key=lambda c: (order.index(c["stage"]), c.get("seq", 0)))
    return next((c for c in cands if c["status"] == ModelStatus.WAITING), None)


def champion_for(ws: Workspace, cfg: CoordinationConfig, sha: str | None = None) -> dict[str, Any] | None:
    """The version a candidate ``sha`` is judged against: the champion live in production, or —
    when ``sha`` is the champion itself — the version it replaced there (its rollback target).
    ``{sha256, version, artifact (Path), adapter, name}``, or None when there is none (a first
    rollout: nothing to compare with)."""
    prod = ws.stage_dir(list(cfg.rollout.stages)[-1])
    live = deployment.live(prod)
    if live and live["sha256"] == sha:
        prev = live.get("previous_version")
        live = read_json(prod / "versions" / prev / "version.json") if prev else None
    if not live or not live.get("version"):
        return None
    artifact = Path(prod) / "versions" / live["version"] / live["artifact"]
    if not artifact.is_file():
        return None
    e = registry.by_sha(ws, live["sha256"])
    return {
        "sha256": live["sha256"],
        "version": live["version"],
        "artifact": artifact,
        "adapter": adapter_for(ws, cfg, live["sha256"]),
        "name": (e or {}).get("name"),
    }
