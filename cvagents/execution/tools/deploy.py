"""deploy_model, rollback_model and run_rollback_drill: the stage side effects, and how each
recovers from a crash in the middle of a call (the ``before``, ``repair`` and ``recovered`` hooks).

Every call is idempotent on the action id. A deployment is checked by the rollout controller
first (``rollout.assess_deploy``): a refusal is final, never carried out, and recorded in
``reports/rollout/decisions.jsonl`` with its reason, like every deployment and rollback.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cvagents.durability.atomic import atomic_write_json, read_json
from cvagents.durability.crashpoints import crashpoint
from cvagents.durability.hashing import sha256_file
from cvagents.execution.tools.paths import inside
from cvagents.execution.tools.registry import (
    Tool,
    ToolContext,
    ToolFailed,
    ToolOutcome,
    ToolRefused,
    not_allowed_value,
)
from cvagents.rollout import decisions, deployment, metrics_store
from cvagents.rollout.controller import assess_deploy
from cvagents.rollout.gates import previous_stage


def _stage(ctx: ToolContext, stage: str):
    if stage not in ctx.config.rollout.stages:  # a typo the model can fix, not a rollout decision
        raise not_allowed_value("stage", stage, ctx.config.rollout.stages)
    d = ctx.workspace.stage_dir(stage)
    d.mkdir(parents=True, exist_ok=True)
    deployment.recover(d)
    return d


def _now(ctx: ToolContext) -> str:
    return ctx.now().isoformat() if ctx.now else ""


def _decide(ctx: ToolContext, tool: str, kind: str, **kw: Any) -> dict:
    """Record one rollout decision a stage tool made: journaled (``ctx.record``) and written to
    decisions.jsonl, with the run's time and the action id."""
    return decisions.append(
        ctx.workspace, ctx.config, kind, time=_now(ctx), source=tool, action_id=ctx.action_key, record=ctx.record, **kw
    )


class DeployArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_path: str = Field(
        description="the model artifact, relative to the workspace (e.g. research/v1_production.pth, or deployment/<stage> for the version live there)"
    )
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
    ws, cfg = ctx.workspace, ctx.config
    stage_dir = _stage(ctx, args.stage)
    art, _ = resolve_model(ctx, args.model_path)
    sha = sha256_file(art)
    done = deployment.by_action(stage_dir, ctx.action_key)
    if done:
        if not any(d.get("action_id") == ctx.action_key and d.get("outcome") == "deployed" for d in decisions.read(ws)):
            # installed by a run that stopped before recording its decision: record it now
            _decide(
                ctx,
                "deploy_model",
                "promotion" if previous_stage(cfg, args.stage) else "deployment",
                stage=args.stage,
                outcome="deployed",
                reason="installed before the run stopped; recorded on resume",
                sha256=done["sha256"],
                version=done["version"],
            )
        return {"stage": args.stage, **done, "already_done": True}
    metrics = metrics_store.load(ws.metrics_file)
    a = assess_deploy(ws, cfg, metrics, args.stage, sha, source=art)
    gates = [g.as_dict() for g in a.review.gates] if a.review else []
    evidence = a.review.evidence if a.review else {}
    kind = "promotion" if a.previous_stage else "deployment"
    if not a.allowed:
        _decide(
            ctx,
            "deploy_model",
            "refused",
            stage=args.stage,
            outcome="refused",
            reason=a.reason,
            sha256=sha,
            gates=gates,
            evidence=evidence,
            thresholds_stage=a.previous_stage or args.stage,
            requested=kind,
            model_path=ws.rel(art),
            **a.extra,
        )
        raise ToolRefused(a.reason)
    m = deployment.install(stage_dir, art, source_label=ws.rel(art), action_id=ctx.action_key, time=_now(ctx))
    d = _decide(
        ctx,
        "deploy_model",
        kind,
        stage=args.stage,
        outcome="deployed",
        reason=a.reason,
        sha256=sha,
        version=m["version"],
        gates=gates,
        evidence=evidence,
        thresholds_stage=a.previous_stage or args.stage,
        from_stage=a.previous_stage,
        model_path=ws.rel(art),
    )
    return {
        "stage": args.stage,
        **m,
        "deployed_to": ws.rel(stage_dir / "versions" / m["version"]),
        "decision_id": d["id"],
        "decision": a.reason,
    }


class StageArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stage: str = Field(description="shadow, 5_percent, 20_percent, 50_percent or production")


def rollback_model(ctx: ToolContext, args: StageArgs) -> dict:
    stage_dir = _stage(ctx, args.stage)
    live = deployment.live(stage_dir)
    pointer = deployment.read_pointer(stage_dir)
    if (
        pointer
        and pointer.get("pointer_action_id", pointer.get("action_id")) == ctx.action_key
        and pointer.get("reason")
    ):
        return {"stage": args.stage, "already_done": True, "live_version": pointer.get("version")}
    if not live:
        raise ToolFailed(f"nothing is deployed to {args.stage}; nothing to roll back")
    prev = live.get("previous_version")
    m = deployment.point_to(
        stage_dir, prev, action_id=ctx.action_key, time=_now(ctx), reason=f"rollback of {live['version']}"
    )
    _decide(
        ctx,
        "rollback_model",
        "rollback",
        stage=args.stage,
        outcome="rolled_back",
        sha256=live["sha256"],
        version=live["version"],
        reason=f"rolled back {args.stage} from {live['version']} to {prev or 'nothing'} on request",
        cause="requested",
        rolled_back_to={"version": prev},
    )
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
        rec = read_json(existing, {})
        if rec.get("passed") is False:  # a replay of a failed drill fails as the drill did
            raise ToolFailed(f"rollback drill on {args.stage} failed: {rec.get('detail')}")
        return {**rec, "already_done": True}
    steps = []
    with deployment.drill(stage_dir) as original:
        prev = original.get("previous_version")
        deployment.point_to(stage_dir, prev, action_id=ctx.action_key, time=_now(ctx), reason="rollback drill")
        crashpoint("drill:rolled_back")
        if prev:
            ok, why = deployment.verify(stage_dir)
            steps.append(f"rolled back to {prev}: {why}")
        else:
            ok = deployment.live(stage_dir) is None
            steps.append("rolled back to no live version (first deployment): stage empty" if ok else "stage not empty")
        back_ok = ok
    ok2, why2 = deployment.verify(stage_dir)
    steps.append(f"rolled forward to {live['version']}: {why2}")
    now_live = deployment.live(stage_dir)
    passed = bool(back_ok and ok2 and now_live is not None and now_live["sha256"] == live["sha256"])
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


# --------------------------------------------------------------------------- recovery hooks


def _known_stage_dir(ctx: ToolContext, args: dict[str, Any]) -> Path | None:
    """The folder of the stage ``args`` names, if it is a stage (never created)."""
    stage = args.get("stage")
    if not isinstance(stage, str) or stage not in ctx.config.rollout.stages:
        return None
    return ctx.workspace.stage_dir(stage)


def stage_pointer_before(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    """The stage's live pointer before the call: what a half-done deployment or rollback is
    undone to."""
    d = _known_stage_dir(ctx, args)
    return {"pointer": deployment.read_pointer(d)} if d is not None else {}


def _decision(ctx: ToolContext, outcome: str) -> dict[str, Any] | None:
    """The rollout decision this action recorded (``outcome``: deployed, rolled_back), if any."""
    return next(
        (
            d
            for d in reversed(decisions.read(ctx.workspace))
            if d.get("action_id") == ctx.action_key and d.get("outcome") == outcome
        ),
        None,
    )


def _put_pointer(stage_dir: Path, pointer: dict[str, Any] | None) -> None:
    if pointer is None:
        (stage_dir / deployment.POINTER).unlink(missing_ok=True)
    else:
        atomic_write_json(stage_dir / deployment.POINTER, pointer)


def repair_deploy(ctx: ToolContext, args: dict[str, Any], before: dict[str, Any]) -> str:
    """A deployment that completed (the version installed, its sha256 verified, the pointer on it
    and the decision recorded) is kept, and the re-run answers "done"; one that stopped half way
    is undone (the version removed, the pointer put back as it was), so it is done again, whole."""
    d = _known_stage_dir(ctx, args)
    if d is None:
        return "unknown stage: nothing to check"
    done = deployment.by_action(d, ctx.action_key)
    if not done:
        return "no version installed by this action: deploying"
    art = d / "versions" / done["version"] / done["artifact"]
    healthy = art.is_file() and sha256_file(art) == done["sha256"]
    pointer = deployment.read_pointer(d) or {}
    if healthy and pointer.get("version") == done["version"] and _decision(ctx, "deployed") is not None:
        return f"{done['version']} installed, verified (sha256 {done['sha256'][:12]}), live and recorded: done"
    shutil.rmtree(d / "versions" / done["version"], ignore_errors=True)
    if "pointer" in before and pointer.get("version") == done["version"]:
        _put_pointer(d, before["pointer"])
    return (
        f"{done['version']} was installed but the deployment did not finish "
        f"({'pointer not switched' if pointer.get('version') != done['version'] else 'decision not recorded'}"
        f"{'' if healthy else ', artifact hash mismatch'}): undone, deploying again"
    )


def recovered_deploy(ctx: ToolContext, outcome: ToolOutcome, before: dict[str, Any]) -> ToolOutcome:
    result = dict(outcome.result)
    if "version" in result and "deployed_to" not in result:
        d = _known_stage_dir(ctx, result)
        if d is not None:
            result["deployed_to"] = ctx.workspace.rel(d / "versions" / result["version"])
        dec = _decision(ctx, "deployed")
        if dec:
            result["decision_id"], result["decision"] = dec.get("id"), dec.get("reason")
    return dataclasses.replace(outcome, result=result)


def repair_rollback(ctx: ToolContext, args: dict[str, Any], before: dict[str, Any]) -> str:
    """A rollback whose pointer swap was recorded is done; one whose swap was not recorded has its
    pointer put back and is done again."""
    d = _known_stage_dir(ctx, args)
    if d is None:
        return "unknown stage: nothing to check"
    pointer = deployment.read_pointer(d) or {}
    mine = pointer.get("pointer_action_id", pointer.get("action_id")) == ctx.action_key
    if not mine:
        return "the pointer was not swapped: rolling back"
    if _decision(ctx, "rolled_back") is not None:
        return f"rolled back to {pointer.get('version')} and recorded: done"
    if "pointer" in before:
        _put_pointer(d, before["pointer"])
        return "the pointer was swapped but the rollback not recorded: pointer restored, rolling back again"
    return "the pointer was swapped; no earlier pointer journaled: done"


def recovered_rollback(ctx: ToolContext, outcome: ToolOutcome, before: dict[str, Any]) -> ToolOutcome:
    result = outcome.result
    if "manifest" in result:
        return outcome
    d = _known_stage_dir(ctx, result)
    pointer = deployment.read_pointer(d) if d is not None else None
    if pointer and str(pointer.get("reason") or "").startswith("rollback of "):
        result = {
            "stage": result.get("stage"),
            "rolled_back": pointer["reason"][len("rollback of ") :],
            "live_version": pointer.get("version"),
            "manifest": pointer,
        }
    return dataclasses.replace(outcome, result=result)


def repair_drill(ctx: ToolContext, args: dict[str, Any], before: dict[str, Any]) -> str:
    """A drill cut short may have left the pointer on the previous version: put it back."""
    d = _known_stage_dir(ctx, args)
    if d is not None and deployment.recover(d):
        return "a drill cut short had left the pointer swapped: restored; drilling again"
    return "pointer consistent; re-running (idempotent on the action id)"


TOOLS = [
    Tool(
        "deploy_model",
        "Deploy a model artifact to a rollout stage (versioned copy + manifest with sha256; the live pointer is switched atomically). Refused when it would skip a stage, promote past a gate that has not passed (or a version without a passed rollback drill, or one awaiting human approval), or deploy an unknown or rejected artifact.",
        DeployArgs,
        deploy_model,
        side_effect=True,
        deployment_log=True,
        before=stage_pointer_before,
        repair=repair_deploy,
        recovered=recovered_deploy,
    ),
    Tool(
        "rollback_model",
        "Roll a stage back to its previous version (a pointer swap); with no previous version the stage is emptied.",
        StageArgs,
        rollback_model,
        side_effect=True,
        deployment_log=True,
        before=stage_pointer_before,
        repair=repair_rollback,
        recovered=recovered_rollback,
    ),
    Tool(
        "run_rollback_drill",
        "Rollback drill for a stage: roll back to the previous version, check health, roll forward, verify the checksum. Its result is the 'rollback test' gate.",
        StageArgs,
        run_rollback_drill,
        side_effect=True,
        deployment_log=True,
        repair=repair_drill,
    ),
]
