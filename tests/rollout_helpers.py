"""Helpers shared by the rollout tests: a tool context on a workspace, and evidence that passes
(or fails) a stage's gates without training or replaying anything."""

from __future__ import annotations

from cvagents.config import CoordinationConfig
from cvagents.durability.hashing import sha256_file
from cvagents.execution.tools import ToolContext, default_registry
from cvagents.models import registry
from cvagents.rollout import deployment, metrics_store
from cvagents.workspace import Workspace

REG = default_registry()


def make_ctx(root, cfg: CoordinationConfig | None = None, model_bytes: bytes | None = b"model-bytes-v1") -> ToolContext:
    cfg = cfg or CoordinationConfig()
    ws = Workspace.from_config(root, cfg).create()
    if model_bytes is not None:
        (ws.research_dir / "v1_production.pth").write_bytes(model_bytes)
    info = ws.validation_dir / "dataset_info.json"
    if not info.exists():  # a placeholder: these tests record evidence rather than evaluate
        info.parent.mkdir(parents=True, exist_ok=True)
        info.write_text("{}")
    return ToolContext(ws, cfg, action_key="m#1", now=None)


def call(ctx, name, key, **args):
    ctx.action_key = key
    return REG.call(ctx, name, args)


def record(
    ctx, stage, *, ndcg_low=0.80, slo=1.0, p0=0, requests=None, minutes=None, evaluation=True, traffic=True, tag="a"
):
    """Measurements of the version live in ``stage``: an evaluation and a replay's traffic."""
    live = deployment.live(ctx.workspace.stage_dir(stage))
    plan = ctx.config.rollout.stages[stage]
    n = plan.min_requests if requests is None else requests
    if evaluation:
        metrics_store.record_evaluation(
            ctx.workspace.evaluations_dir,
            {
                "id": f"eval_{stage}_{tag}_{live['sha256'][:8]}",
                "kind": "evaluation",
                "time": f"t_{tag}",
                "stage": stage,
                "version": live["version"],
                "model_sha256": live["sha256"],
                "ndcg_at_10": ndcg_low + 0.02,
                "ndcg_at_10_ci95": [ndcg_low, ndcg_low + 0.04],
                "latency_p95_ms": 3.0,
                "champion": None,  # a first rollout: the comparison gates have nothing to compare with
            },
        )
    if traffic:
        metrics_store.record_evaluation(
            ctx.workspace.evaluations_dir,
            {
                "id": f"traffic_{stage}_{tag}_{live['sha256'][:8]}",
                "kind": "traffic",
                "time": f"t_{tag}",
                "stage": stage,
                "version": live["version"],
                "model_sha256": live["sha256"],
                "requests": n,
                "candidate_requests": n,
                "errors": 0,
                "within_slo": round(n * slo),
                "observed_minutes": plan.min_observed_minutes if minutes is None else minutes,
                "p0_incidents": p0,
                "incidents": ["P0: test"] * p0,
                "serve_latency_p95_ms": 1.0,
            },
        )
    metrics_store.collect(ctx.workspace.metrics_file, ctx.workspace.evaluations_dir, "t")


def pass_stage(ctx, stage, key_prefix):
    """Evidence that passes every gate of ``stage``, including a real rollback drill."""
    record(ctx, stage, tag=key_prefix)
    o = call(ctx, "run_rollback_drill", f"{key_prefix}#drill", stage=stage)
    assert o.status == "succeeded", o.result
    metrics_store.collect(ctx.workspace.metrics_file, ctx.workspace.evaluations_dir, "t")


def promote_through(ctx, stages, key_prefix="p"):
    """Deploy the research model to the first stage and promote it through ``stages``."""
    first = stages[0]
    o = call(ctx, "deploy_model", f"{key_prefix}#deploy_{first}", model_path="research/v1_production.pth", stage=first)
    assert o.status == "succeeded", o.result
    for prev, nxt in zip(stages, stages[1:]):
        pass_stage(ctx, prev, f"{key_prefix}_{prev}")
        o = call(ctx, "deploy_model", f"{key_prefix}#deploy_{nxt}", model_path=f"deployment/{prev}", stage=nxt)
        assert o.status == "succeeded", o.result


def submit(ctx, name: str, data: bytes) -> str:
    """A candidate registered as `cvagents submit` registers it, its artifact research/<name>.pth
    holding ``data``; its sha256."""
    path = ctx.workspace.research_dir / f"{name}.pth"
    path.write_bytes(data)
    sha = sha256_file(path)
    registry.add(
        ctx.workspace,
        name=name,
        sha256=sha,
        path=ctx.workspace.rel(path),
        adapter=None,
        source={"kind": "file"},
        time="2026-01-01T00:00:00+00:00",
        submitted_by="test",
    )
    return sha
