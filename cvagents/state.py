"""The run's state as the agents see it: one JSON-ready snapshot computed from the workspace
(artifacts, stage pointers, metrics, gates) and from the executive's last phase.

The agenda, every agent's prompt and the offline provider all read this one snapshot, so the
same workspace gives the same snapshot.
"""
from __future__ import annotations

from typing import Any

from . import deployment, metrics_store, rollout
from .config import CoordinationConfig
from .hashing import sha256_file
from .workspace import Workspace


def rejected_shas(metrics: dict[str, Any], cfg: CoordinationConfig) -> set[str]:
    """Artifacts whose measurements failed a gate at any stage: never redeployed by a plan."""
    out = set()
    for rec in metrics.get("history", []):
        sha = rec.get("model_sha256")
        if sha and rec.get("stage"):
            if rollout.verdict(rollout.evaluate_gates({"stages": {rec["stage"]: rec}}, rec["stage"], sha, cfg)) == rollout.FAIL:
                out.add(sha)
    for drill in (metrics.get("rollback_drills") or {}).values():
        if drill.get("passed") is False:
            out.add(drill.get("model_sha256"))
    return out


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
    model_sha = sha256_file(ws.model_file) if ws.model_file.is_file() else None
    stages: dict[str, Any] = {}
    current = None
    for stage in cfg.rollout.stages:
        live = deployment.live(ws.stage_dir(stage))
        stages[stage] = {"version": live["version"], "sha256": live["sha256"]} if live else None
        if live:
            current = stage
    cur: dict[str, Any] | None = None
    if current:
        live = stages[current]
        gates = rollout.evaluate_gates(metrics, current, live["sha256"], cfg)
        rec = (metrics.get("stages") or {}).get(current)
        cur = {
            "stage": current,
            "version": live["version"],
            "sha256": live["sha256"],
            "evaluated": bool(rec and rec.get("model_sha256") == live["sha256"]),
            "verdict": rollout.verdict(gates),
            "gates": [g.as_dict() for g in gates],
            "metrics": {k: rec.get(k) for k in metrics_store.GATE_FIELDS} if rec else None,
        }
    rejected = rejected_shas(metrics, cfg)
    g = cfg.rollout.gates
    return {
        "meeting_number": meeting_number,
        "stages_order": list(cfg.rollout.stages),
        "thresholds": {
            "ndcg_at_10_min": g.ndcg_at_10_min,
            "latency_p95_ms_max": g.latency_p95_ms_max,
            "slo_compliance_min": g.slo_compliance_min,
            "p0_incidents_max": g.p0_incidents_max,
            "rollback_test_required": g.rollback_test_required,
        },
        "artifacts": {
            "model": ws.rel(ws.model_file) if model_sha else None,
            "model_sha256": model_sha,
            "model_rejected": bool(model_sha and model_sha in rejected),
            "validation_set": (ws.validation_dir / "dataset_info.json").is_file(),
        },
        "stages": stages,
        "current": cur,
        "next_stage": rollout.next_stage(cfg, current),
        "evaluations_recorded": len(metrics.get("history", [])),
        "last_execution": last_execution or {"succeeded": [], "failed": [], "refused": []},
        "open_actions": open_actions or [],
        "failed_actions": failed_actions or [],
    }
