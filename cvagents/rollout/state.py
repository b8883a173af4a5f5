"""The run's state as the agents see it: one JSON-ready snapshot computed from the workspace
(artifacts, stage pointers, metrics, gates, the controller's decisions and approvals) and from
the executive's last phase.

The agenda, every agent's prompt and the offline provider all read this one snapshot, so the
same workspace gives the same snapshot.
"""

from __future__ import annotations

from typing import Any

from cvagents.config import CoordinationConfig
from cvagents.durability.hashing import sha256_file
from cvagents.rollout import approval, decisions, deployment, gates, metrics_store
from cvagents.rollout.controller import rejected_shas
from cvagents.workspace import Workspace


def _short(text: str | None, limit: int = 200) -> str | None:
    return text if not text or len(text) <= limit else text[: limit - 1] + "…"


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
    nxt = gates.next_stage(cfg, current)
    cur: dict[str, Any] | None = None
    awaiting = None
    if current:
        live = stages[current]
        r = gates.review_stage(metrics, current, live["sha256"], cfg, live["version"])
        ev = metrics_store.evidence(metrics, current, live["sha256"])
        summ = metrics_store.summary(ev)
        cur = {
            "stage": current,
            "version": live["version"],
            "sha256": live["sha256"],
            "traffic": cfg.rollout.stages[current].traffic,
            "evaluated": bool(ev and ev.get("evaluation")),
            "verdict": r.verdict,
            "gates": [g.as_dict() for g in r.gates],
            "evidence": r.evidence,
            "metrics": {k: summ.get(k) for k in (*metrics_store.GATE_FIELDS, "top10_overlap", "error_rate")}
            if summ
            else None,
        }
        if r.verdict == gates.PASS and nxt and approval.awaiting(ws, cfg, nxt, live["sha256"]):
            awaiting = {
                "stage": nxt,
                "version": live["version"],
                "sha256": live["sha256"],
                "command": f"cvagents approve --workspace {ws.root} --stage {nxt}",
            }
    rejected = rejected_shas(ws, cfg, metrics)
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
        "artifacts": {
            "model": ws.rel(ws.model_file) if model_sha else None,
            "model_sha256": model_sha,
            "model_rejected": bool(model_sha and model_sha in rejected),
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
        "last_execution": last_execution or {"succeeded": [], "failed": [], "refused": []},
        "open_actions": open_actions or [],
        "failed_actions": failed_actions or [],
    }
