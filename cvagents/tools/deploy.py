"""deploy_model, rollback_model and run_rollback_drill: the stage side effects.

Every call is idempotent on the action id and checked by the rollout controller first.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .. import deployment, metrics_store, rollout
from ..hashing import sha256_file
from .paths import inside
from .registry import Tool, ToolContext, ToolFailed, ToolRefused


def _stage(ctx: ToolContext, stage: str):
    if stage not in ctx.config.rollout.stages:
        raise ToolRefused(f"unknown stage {stage!r}; stages are {', '.join(ctx.config.rollout.stages)}")
    d = ctx.workspace.stage_dir(stage)
    d.mkdir(parents=True, exist_ok=True)
    deployment.recover(d)
    return d


def _now(ctx: ToolContext) -> str:
    return ctx.now().isoformat() if ctx.now else ""


class DeployArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_path: str = Field(description="the model artifact, relative to the workspace (e.g. research/v1_production.pth, or deployment/<stage> for the version live there)")
    stage: str = Field(description="shadow, 5_percent, 20_percent, 50_percent or production")


def resolve_model(ctx: ToolContext, given: str):
    """A model file, or ``deployment/<stage>`` meaning the version live in that stage."""
    ws = ctx.workspace
    p = inside(ws.root, given, what="model_path")
    if p.is_dir() and p.parent == ws.deployment_dir.resolve():
        art = deployment.live_artifact(p)
        if not art:
            raise ToolFailed(f"nothing is deployed to {p.name}")
        return art, p.name
    if not p.is_file():
        raise ToolFailed(f"model artifact {given} not found")
    stage = p.parent.parent.parent.name if p.parent.parent.name == "versions" else None
    return p, stage


def deploy_model(ctx: ToolContext, args: DeployArgs) -> dict:
    stage_dir = _stage(ctx, args.stage)
    art, _ = resolve_model(ctx, args.model_path)
    sha = sha256_file(art)
    done = deployment.by_action(stage_dir, ctx.action_key)
    if done:
        return {"stage": args.stage, **done, "already_done": True}
    metrics = metrics_store.load(ctx.workspace.metrics_file)
    why = rollout.check_deploy(ctx.workspace, ctx.config, metrics, args.stage, sha)
    if why:
        raise ToolRefused(why)
    m = deployment.install(stage_dir, art, source_label=ctx.workspace.rel(art), action_id=ctx.action_key, time=_now(ctx))
    return {"stage": args.stage, **m, "deployed_to": ctx.workspace.rel(stage_dir / "versions" / m["version"])}


class StageArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stage: str = Field(description="shadow, 5_percent, 20_percent, 50_percent or production")


def rollback_model(ctx: ToolContext, args: StageArgs) -> dict:
    stage_dir = _stage(ctx, args.stage)
    live = deployment.live(stage_dir)
    pointer = deployment.read_pointer(stage_dir)
    if pointer and pointer.get("pointer_action_id", pointer.get("action_id")) == ctx.action_key and pointer.get("reason"):
        return {"stage": args.stage, "already_done": True, "live_version": pointer.get("version")}
    if not live:
        raise ToolFailed(f"nothing is deployed to {args.stage}; nothing to roll back")
    prev = live.get("previous_version")
    m = deployment.point_to(stage_dir, prev, action_id=ctx.action_key, time=_now(ctx), reason=f"rollback of {live['version']}")
    return {"stage": args.stage, "rolled_back": live["version"], "live_version": prev, "manifest": m}


def run_rollback_drill(ctx: ToolContext, args: StageArgs) -> dict:
    """Roll the stage back to its previous version, check health, roll forward, check the
    checksum. Crash-safe: the original pointer is saved first and restored on the next call."""
    ws = ctx.workspace
    stage_dir = _stage(ctx, args.stage)
    live = deployment.live(stage_dir)
    if not live:
        raise ToolFailed(f"nothing is deployed to {args.stage}; no rollback path to drill")
    rec_id = f"drill_{_safe(ctx.action_key)}_{live['sha256'][:8]}"
    done = metrics_store.load(ws.metrics_file).get("merged", [])
    existing = ws.evaluations_dir / f"{rec_id}.json"
    if rec_id in done or existing.exists():
        from ..atomic import read_json

        return {**read_json(existing, {}), "already_done": True}
    steps = []
    with deployment.drill(stage_dir) as original:
        prev = original.get("previous_version")
        deployment.point_to(stage_dir, prev, action_id=ctx.action_key, time=_now(ctx), reason="rollback drill")
        if prev:
            ok, why = deployment.verify(stage_dir)
            steps.append(f"rolled back to {prev}: {why}")
        else:
            ok = deployment.live(stage_dir) is None
            steps.append("rolled back to no live version (first deployment): stage empty" if ok else "stage not empty")
        back_ok = ok
    ok2, why2 = deployment.verify(stage_dir)
    steps.append(f"rolled forward to {live['version']}: {why2}")
    passed = bool(back_ok and ok2 and deployment.live(stage_dir)["sha256"] == live["sha256"])
    rec = {
        "id": rec_id,
        "kind": "rollback_drill",
        "time": _now(ctx),
        "stage": args.stage,
        "version": live["version"],
        "model_sha256": live["sha256"],
        "passed": passed,
        "detail": "; ".join(steps),
        "action_id": ctx.action_key,
    }
    metrics_store.record_evaluation(ws.evaluations_dir, rec)
    if not passed:
        raise ToolFailed(f"rollback drill on {args.stage} failed: {rec['detail']}")
    return rec


def _safe(key: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in key)


TOOLS = [
    Tool("deploy_model", "Deploy a model artifact to a rollout stage (versioned copy + manifest with sha256; the live pointer is switched atomically). Refused when it would skip a stage or pass a gate that has not passed.", DeployArgs, deploy_model),
    Tool("rollback_model", "Roll a stage back to its previous version (a pointer swap); with no previous version the stage is emptied.", StageArgs, rollback_model),
    Tool("run_rollback_drill", "Rollback drill for a stage: roll back to the previous version, check health, roll forward, verify the checksum. Its result is the 'rollback test' gate.", StageArgs, run_rollback_drill),
]
