"""run_evaluation and collect_metrics."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .. import metrics_store, rollout, deployment
from ..atomic import read_json
from ..hashing import sha256_file
from .deploy import _now, _safe, resolve_model
from .paths import inside
from .registry import Tool, ToolContext, ToolFailed


class EvalArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_path: str = Field(default="research/v1_production.pth", description="a model file, or deployment/<stage> for the version live in that stage")
    validation_set: str = Field(default="data/validation_set", description="the validation set folder")


def run_evaluation(ctx: ToolContext, args: EvalArgs) -> dict:
    ws = ctx.workspace
    model, stage = resolve_model(ctx, args.model_path)
    vdir = inside(ws.root, args.validation_set, what="validation_set")
    if not (vdir / "dataset_info.json").is_file():
        raise ToolFailed(f"validation set {args.validation_set} not found (no dataset_info.json)")
    sha = sha256_file(model)
    rec_id = f"eval_{_safe(ctx.action_key)}_{sha[:8]}"
    existing = read_json(ws.evaluations_dir / f"{rec_id}.json")
    if existing:
        return {**existing, "already_done": True}
    from ..models import evaluate_model  # torch only when evaluating

    m = evaluate_model(model, vdir)
    objective = ctx.config.rollout.gates.latency_p95_ms_max
    lat = m.pop("latencies_ms", None)
    rec = {
        "id": rec_id,
        "kind": "evaluation",
        "time": _now(ctx),
        "stage": stage,
        "version": deployment.live(ws.stage_dir(stage))["version"] if stage else None,
        "model_path": ws.rel(model),
        "model_sha256": sha,
        "action_id": ctx.action_key,
        **{k: v for k, v in m.items() if k not in ("model_path", "model_sha256")},
    }
    if lat is not None and "slo_compliance" not in rec:
        rec["slo_compliance"] = round(sum(1 for x in lat if x < objective) / max(1, len(lat)), 6)
        rec["p0_incidents"] = 0
    metrics_store.record_evaluation(ws.evaluations_dir, rec)
    return rec


class NoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


def collect_metrics(ctx: ToolContext, args: NoArgs) -> dict:
    ws = ctx.workspace
    out = metrics_store.collect(ws.metrics_file, ws.evaluations_dir, _now(ctx))
    metrics = out["metrics"]
    stages = {}
    for stage in ctx.config.rollout.stages:
        live = deployment.live(ws.stage_dir(stage))
        if not live:
            continue
        gates = rollout.evaluate_gates(metrics, stage, live["sha256"], ctx.config)
        stages[stage] = {
            "version": live["version"],
            "verdict": rollout.verdict(gates),
            "gates": {g.gate: {"status": g.status, "value": g.value, "threshold": g.threshold} for g in gates},
        }
    return {
        "metrics_file": ws.rel(ws.metrics_file),
        "new_records": [r["id"] for r in out["new"]],
        "history_length": len(metrics["history"]),
        "stages": stages,
    }


TOOLS = [
    Tool("run_evaluation", "Evaluate a model on the validation set: NDCG@10 with its 95% CI, recall@10, MRR, per-query latency P50/P95/P99, SLO compliance.", EvalArgs, run_evaluation),
    Tool("collect_metrics", "Merge new evaluation and drill results into runs/report/metrics.json and report every deployed stage's gates.", NoArgs, collect_metrics),
]
