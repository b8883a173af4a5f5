"""run_evaluation and collect_metrics."""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cvagents.durability.atomic import read_json
from cvagents.durability.hashing import sha256_file
from cvagents.execution.evaluators import EvaluatorError, evaluate
from cvagents.execution.tools.deploy import _now, _safe, resolve_model
from cvagents.execution.tools.paths import inside
from cvagents.execution.tools.registry import Tool, ToolContext, ToolFailed, ToolOutcome
from cvagents.rollout import deployment, gates, metrics_store


class EvalArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_path: str = Field(
        default="research/v1_production.pth",
        description="a model file, or deployment/<stage> for the version live in that stage",
    )
    validation_set: str = Field(default="data/validation_set", description="the validation set folder")


def run_evaluation(ctx: ToolContext, args: EvalArgs) -> dict:
    """The configured evaluator (evaluation.evaluator) on one model; the record is evidence for
    the stage the model is live in (when given as deployment/<stage> or a stage's version)."""
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
    try:
        m = evaluate(ctx.config, ws, model, vdir, sha=sha)
    except EvaluatorError as e:
        raise ToolFailed(str(e)) from None
    m.pop("latencies_ms", None)
    live = deployment.live(ws.stage_dir(stage)) if stage else None
    if live and live["sha256"] != sha:
        stage, live = None, None  # an older version of the stage, not the live one: no stage evidence
    rec = {
        "id": rec_id,
        "kind": "evaluation",
        "time": _now(ctx),
        "stage": stage,
        "version": live["version"] if live else None,
        "model_path": ws.rel(model),
        "model_sha256": sha,
        "action_id": ctx.action_key,
        "evaluator": ctx.config.evaluation.evaluator,
        **{
            k: v
            for k, v in m.items()
            if k not in ("model_path", "model_sha256", "id", "kind", "time", "stage", "version", "action_id")
        },
    }
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
        r = gates.review_stage(metrics, stage, live["sha256"], ctx.config, live["version"])
        stages[stage] = {
            "version": live["version"],
            "verdict": r.verdict,
            "reason": r.reason,
            "evidence": r.evidence,
            "gates": {g.gate: {"status": g.status, "value": g.value, "threshold": g.threshold} for g in r.gates},
        }
    return {
        "metrics_file": ws.rel(ws.metrics_file),
        "new_records": [r["id"] for r in out["new"]],
        "history_length": len(metrics["history"]),
        "stages": stages,
    }


def merged_before(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    """How many records metrics.json had merged before the call."""
    return {"merged": len(metrics_store.load(ctx.workspace.metrics_file).get("merged", []))}


def recovered_collect(ctx: ToolContext, outcome: ToolOutcome, before: dict[str, Any]) -> ToolOutcome:
    """A re-run finds nothing new to merge: report what the interrupted call merged."""
    if "merged" not in before or "new_records" not in outcome.result:
        return outcome
    merged = metrics_store.load(ctx.workspace.metrics_file).get("merged", [])
    return dataclasses.replace(outcome, result={**outcome.result, "new_records": list(merged[before["merged"] :])})


TOOLS = [
    Tool(
        "run_evaluation",
        "Evaluate a model on the validation set with the configured evaluator: NDCG@10 with its 95% CI, recall@10, MRR, per-query latency P50/P95/P99.",
        EvalArgs,
        run_evaluation,
    ),
    Tool(
        "collect_metrics",
        "Merge new evaluation, traffic and drill results into runs/report/metrics.json and report every deployed stage's gates and evidence.",
        NoArgs,
        collect_metrics,
        before=merged_before,
        recovered=recovered_collect,
    ),
]
