"""The run's state as the agents see it: one JSON-ready snapshot computed from the workspace
(artifacts, candidates, stage pointers, metrics, gates, the controller's decisions and
approvals) and from the executive's last phase.

It is candidate-centric: ``models`` holds the champion, every candidate and the active one (the
one the agents work on, ``rollout.lifecycle``), and ``current`` is the active candidate's
furthest live stage — not "the last stage with anything live", which is the V1 champion's
production while V2 rolls out from shadow. With no active candidate, ``current`` is the
champion at production (watching).

The agenda, every agent's prompt and the offline provider all read this one snapshot, so the
same workspace gives the same snapshot.
"""

from __future__ import annotations

from typing import Any

from cvagents.config import CoordinationConfig
from cvagents.durability.hashing import sha256_file
from cvagents.rollout import approval, decisions, deployment, gates, lifecycle, metrics_store
from cvagents.rollout.controller import rejected_shas
from cvagents.workspace import Workspace


def _short(text: str | None, limit: int = 200) -> str | None:
    return text if not text or len(text) <= limit else text[: limit - 1] + "…"


def _model(c: dict[str, Any] | None) -> dict[str, Any] | None:
    """A candidate as the agents see it: short (the snapshot is in every journaled step)."""
    if c is None:
        return None
    return {
        "name": c["name"],
        "sha256": c["sha256"][:12],
        "path": c["path"],
        "status": str(c["status"]),
        "stage": c["stage"],
        "rejected_reason": _short(c["rejected_reason"]),
    }


#: how many of the latest candidates the agents see (besides the champion and the active one), so
#: that the snapshot, which goes into every prompt, does not grow with every submission
CANDIDATES_IN_VIEW = 5


def _in_view(cands: list[dict[str, Any]], *keep: dict[str, Any] | None) -> list[dict[str, Any]]:
    latest = sorted(cands, key=lambda c: c.get("seq", 0))[-CANDIDATES_IN_VIEW:]
    names = {c["name"] for c in latest} | {c["name"] for c in keep if c}
    return [c for c in cands if c["name"] in names]


def _current_stage(
    cfg: CoordinationConfig, stages: dict[str, Any], cands: list[dict[str, Any]], active: dict[str, Any] | None
) -> str | None:
    """The stage the team works on: the active candidate's furthest live stage (None while it
    waits), else the champion's production, else the last stage with anything live."""
    if active is not None:
        return active["stage"]
    order = list(cfg.rollout.stages)
    if any(c["status"] == lifecycle.ModelStatus.CHAMPION for c in cands):
        return order[-1]
    return next((s for s in reversed(order) if stages[s]), None)


def _stage_view(metrics: dict, cfg: CoordinationConfig, stage: str, live: dict[str, Any]) -> tuple[dict, Any]:
    """``current``: the gates, evidence and metrics of the version ``live`` in ``stage``."""
    r = gates.review_stage(metrics, stage, live["sha256"], cfg, live["version"])
    ev = metrics_store.evidence(metrics, stage, live["sha256"])
    summ = metrics_store.summary(ev)
    return {
        "stage": stage,
        "version": live["version"],
        "sha256": live["sha256"],
        "traffic": cfg.rollout.stages[stage].traffic,
        "evaluated": bool(ev and ev.get("evaluation")),
        "verdict": r.verdict,
        "gates": [g.as_dict() for g in r.gates],
        "evidence": r.evidence,
        "metrics": {k: summ.get(k) for k in (*metrics_store.GATE_FIELDS, "top10_overlap", "error_rate")}
        if summ
        else None,
    }, r


def snapshot(
    ws: Workspace,
    cfg: CoordinationConfig,
    *,
    meeting_number: int = 0,
    last_execution: dict[str, list] | None = None,
    open_actions: list[dict] | None = None,
    failed_actions: list[dict] | None = None,
) -> dict[str, Any]:
    metrics = metrics_store.load(ws.metrics_file)
    rejected = rejected_shas(ws, cfg, metrics)
    cands = lifecycle.candidates(ws, cfg, metrics, rejected)
    active = lifecycle.active_candidate(cands, cfg)
    champion = next((c for c in cands if c["status"] == lifecycle.ModelStatus.CHAMPION), None)
    newest = max(cands, key=lambda c: c.get("seq", 0), default=None)
    stages: dict[str, Any] = {}
    for stage in cfg.rollout.stages:
        live = deployment.live(ws.stage_dir(stage))
        stages[stage] = {"version": live["version"], "sha256": live["sha256"]} if live else None
    current = _current_stage(cfg, stages, cands, active)
    nxt = gates.next_stage(cfg, current)
    cur: dict[str, Any] | None = None
    awaiting = None
    if current:
        cur, r = _stage_view(metrics, cfg, current, stages[current])
        if r.verdict == gates.PASS and nxt and approval.awaiting(ws, cfg, nxt, cur["sha256"]):
            awaiting = {
                "stage": nxt,
                "version": cur["version"],
                "sha256": cur["sha256"],
                "command": f"cvagents approve --workspace {ws.root} --stage {nxt}",
            }
    if active is not None:
        model_path, model_sha = active["path"], active["sha256"]
    else:
        model_sha = sha256_file(ws.model_file) if ws.model_file.is_file() else None
        model_path = ws.rel(ws.model_file) if model_sha else None
    recent = [
        {**{k: d.get(k) for k in ("time", "kind", "stage")}, "reason": _short(d.get("reason"))}
        for d in decisions.read(ws)[-3:]
    ]
    return {
        "meeting_number": meeting_number,
        "stages_order": list(cfg.rollout.stages),
        "thresholds": gates.thresholds_summary(cfg),
        "plan": {  # the stage plan of the stages in play: the current one and the next
            s: {
                "traffic": p.traffic,
                "min_requests": p.min_requests,
                "min_observed_minutes": p.min_observed_minutes,
                **({"approval": True} if approval.required(cfg, s) else {}),
            }
            for s, p in cfg.rollout.stages.items()
            if s in (current, nxt)
        },
        "replay": {
            "requests_per_minute": cfg.rollout.replay.requests_per_minute,
            "default_minutes": cfg.rollout.replay.default_minutes,
            "max_minutes": cfg.rollout.replay.max_minutes,
        },
        "models": {
            "champion": _model(champion),
            "candidates": [_model(c) for c in _in_view(cands, champion, active)],
            "active": _model(active),
        },
        "artifacts": {
            "model": model_path,  # the active candidate's artifact, else the guide's model file
            "model_sha256": model_sha,
            "model_rejected": bool(newest and newest["status"] == lifecycle.ModelStatus.REJECTED),
            "validation_set": (ws.validation_dir / "dataset_info.json").is_file(),
        },
        "stages": stages,
        "current": cur,
        "next_stage": nxt,
        "rollout": {
            "paused": bool(cur and cur["verdict"] == gates.INCONCLUSIVE),
            "reason": r.reason if cur and cur["verdict"] != gates.PASS else None,
            "awaiting_approval": awaiting,
            "rejected": {s[:12]: why for s, why in rejected.items()},
            "recent_decisions": recent,
        },
        "evaluations_recorded": len(metrics.get("history", [])),
        # each action's status and error come from its tool calls; what its agent said is only
        # its ``claim``, labelled as such: the measured values are ``current`` (metrics.json)
        "last_execution": last_execution or {"succeeded": [], "failed": [], "refused": [], "unverified": []},
        "open_actions": open_actions or [],
        "failed_actions": failed_actions or [],
    }
