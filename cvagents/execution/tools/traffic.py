"""replay_traffic and rollout_status."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cvagents.durability.atomic import atomic_write_json, read_json
from cvagents.execution.tools.deploy import _now, _safe, _stage
from cvagents.execution.tools.registry import Tool, ToolArgumentError, ToolContext, ToolFailed, not_allowed_value
from cvagents.models import collection
from cvagents.models.collection import CollectionError
from cvagents.models.compute import ComputeError, Engine, ModelRef, engine_for
from cvagents.rollout import approval, decisions, deployment, gates, lifecycle, metrics_store, traffic
from cvagents.rollout.controller import rejected_shas


class ReplayArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stage: str = Field(description="shadow, 5_percent, 20_percent, 50_percent or production")
    minutes: float | None = Field(
        default=None,
        gt=0,
        description="simulated minutes of traffic to replay (default: rollout.replay.default_minutes)",
    )


def replay_traffic(ctx: ToolContext, args: ReplayArgs) -> dict:
    """Replay validation queries as live traffic through the stage's router; the result is
    traffic evidence (requests, observed minutes, SLO compliance, P0 incidents) for the
    version live in the stage. Both the candidate and production (the champion) are served
    through their model adapters."""
    ws, cfg = ctx.workspace, ctx.config
    rc = cfg.rollout
    stage_dir = _stage(ctx, args.stage)
    live = deployment.live(stage_dir)
    if not live:
        raise ToolFailed(f"nothing is deployed to {args.stage}; no traffic to replay")
    minutes = args.minutes or rc.replay.default_minutes
    if minutes > rc.replay.max_minutes:
        raise ToolArgumentError(
            f"argument minutes: a replay covers at most {rc.replay.max_minutes:g} minutes (rollout.replay.max_minutes); asked for {minutes:g}"
        )
    rec_id = f"traffic_{_safe(ctx.action_key)}_{live['sha256'][:8]}"
    existing = read_json(ws.evaluations_dir / f"{rec_id}.json")
    if existing:
        return {**existing, "already_done": True}
    engine = _engine(ctx)
    ok, why = deployment.verify(stage_dir)
    if not ok:
        raise ToolFailed(
            f"the live artifact of {args.stage} is unhealthy ({why}); the rollout controller rolls it back"
        )
    if not (ws.validation_dir / "dataset_info.json").is_file():
        raise ToolFailed("validation set not found (data/validation_set/dataset_info.json); create the artifacts first")
    try:
        texts = collection.load(ws.validation_dir).texts
    except CollectionError as e:
        raise ToolFailed(str(e)) from None
    artifact = deployment.live_artifact(stage_dir)
    assert artifact is not None  # live was checked above
    candidate = ModelRef.of(lifecycle.adapter_for(ws, cfg, live["sha256"]), artifact, ws.validation_dir)
    production, prod_info = _production(ctx, args.stage)
    n = max(1, round(minutes * rc.replay.requests_per_minute))
    seed = int(hashlib.sha256(f"{ctx.action_key}:{live['sha256']}".encode()).hexdigest()[:8], 16)
    try:
        res, load_errors = traffic.replay_models(
            engine,
            candidate,
            production,
            texts,
            weight=rc.stages[args.stage].traffic,
            requests=n,
            slo_ms=rc.slo.latency_objective_ms,
            p0_error_rate=rc.incidents.p0_error_rate,
            p0_on_crash=rc.incidents.p0_on_crash,
            seed=seed,
            warmup=rc.replay.warmup_requests,
        )
    except ComputeError as e:
        raise ToolFailed(str(e)) from None
    if prod_info is not None and "production" in load_errors:
        prod_info = {**prod_info, "error": load_errors["production"][:300]}
    per_request = res.pop("per_request")
    log_file = ws.metrics_file.parent / "traffic" / f"{rec_id}.json"
    atomic_write_json(log_file, {"id": rec_id, "stage": args.stage, "version": live["version"], **per_request})
    prune_request_logs(log_file.parent, rc.replay.keep_request_logs, keep=log_file)
    rec = {
        "id": rec_id,
        "kind": "traffic",
        "time": _now(ctx),
        "stage": args.stage,
        "version": live["version"],
        "model_sha256": live["sha256"],
        "action_id": ctx.action_key,
        "observed_minutes": minutes,
        **res,
        "production": prod_info,
        "comparison": None
        if res["mode"] != "shadow"
        else (
            "top-10 overlap with production"
            if prod_info and "error" not in prod_info
            else "no production version to compare with"
        ),
        "requests_file": ws.rel(log_file),
    }
    metrics_store.record_evaluation(ws.evaluations_dir, rec)
    return rec


def _engine(ctx: ToolContext) -> Engine:
    """The configured compute engine, reached now: a cluster that cannot be reached fails the
    step before it starts."""
    try:
        engine = engine_for(ctx.config.compute)
        engine.connect()
    except ComputeError as e:
        raise ToolFailed(str(e)) from None
    return engine


def _production(ctx: ToolContext, stage: str) -> tuple[ModelRef | None, dict[str, Any] | None]:
    """The version serving production (the champion), for a stage before production: (how to
    open it through its adapter, or None; what it is)."""
    ws, cfg = ctx.workspace, ctx.config
    prod_stage = list(cfg.rollout.stages)[-1]
    prod_dir = ws.stage_dir(prod_stage)
    p_live, artifact = deployment.live(prod_dir), deployment.live_artifact(prod_dir)
    if stage == prod_stage or not p_live or not artifact or not deployment.verify(prod_dir)[0]:
        return None, None
    info = {"stage": prod_stage, "version": p_live["version"], "sha256": p_live["sha256"]}
    return ModelRef.of(lifecycle.adapter_for(ws, cfg, p_live["sha256"]), artifact, ws.validation_dir), info


def prune_request_logs(folder: Path, limit: int | None, keep: Path) -> list[Path]:
    """Delete all but the newest ``limit`` per-request logs (never ``keep``, the one just
    written), so a run that never ends uses bounded disk; returns what was deleted."""
    if limit is None:
        return []
    logs = sorted(folder.glob("traffic_*.json"), key=lambda p: (p.stat().st_mtime_ns, p.name))
    gone = [p for p in logs[: max(0, len(logs) - limit)] if p != keep]
    for p in gone:
        p.unlink(missing_ok=True)
    return gone


class StatusArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stage: str | None = Field(default=None, description="one stage, or every deployed stage when omitted")


def rollout_status(ctx: ToolContext, args: StatusArgs) -> dict:
    """The controller's view: per deployed stage its gates, evidence and verdict; what awaits
    approval; rejected artifacts; the latest decisions. Changes nothing in the rollout (it
    merges pending measurements into metrics.json first, as collect_metrics does)."""
    ws, cfg = ctx.workspace, ctx.config
    if args.stage is not None and args.stage not in cfg.rollout.stages:
        raise not_allowed_value("stage", args.stage, cfg.rollout.stages)
    metrics = metrics_store.collect(ws.metrics_file, ws.evaluations_dir, _now(ctx))["metrics"]
    out: dict[str, dict[str, Any] | None] = {}
    for stage in cfg.rollout.stages:
        if args.stage and stage != args.stage:
            continue
        live = deployment.live(ws.stage_dir(stage))
        if not live:
            out[stage] = None
            continue
        r = gates.review_stage(metrics, stage, live["sha256"], cfg, live["version"])
        nxt = gates.next_stage(cfg, stage)
        out[stage] = {
            "version": live["version"],
            "sha256": live["sha256"],
            "verdict": r.verdict,
            "reason": r.reason,
            "evidence": r.evidence,
            "gates": {g.gate: {"status": g.status, "value": g.value, "threshold": g.threshold} for g in r.gates},
            "next_stage": nxt,
            "next_stage_awaits_approval": bool(nxt and approval.awaiting(ws, cfg, nxt, live["sha256"])),
        }
    rejected = rejected_shas(ws, cfg, metrics)
    recent = [{k: d.get(k) for k in ("time", "kind", "stage", "outcome", "reason")} for d in decisions.read(ws)[-5:]]
    return {"stages": out, "rejected": {s[:12]: why for s, why in rejected.items()}, "recent_decisions": recent}


TOOLS = [
    Tool(
        "replay_traffic",
        "Replay validation queries as live traffic through the stage's router (its traffic share to the candidate, the rest to production; in shadow a mirrored copy compared by top-10 overlap). Records per-request latency and errors, SLO compliance, P0 incidents, requests and observed minutes: the traffic evidence a stage's gates need.",
        ReplayArgs,
        replay_traffic,
    ),
    Tool(
        "rollout_status",
        "Report the rollout controller's view (changes nothing): each deployed stage's gates, evidence and verdict, what awaits human approval, rejected artifacts, recent decisions.",
        StatusArgs,
        rollout_status,
    ),
]
