"""The deliberately worse candidate (the demo's degraded model, `cvagents submit --demo degraded`) never gets past
shadow, and a regression that appears after a promotion is rolled back automatically — with the
real models, real evaluations, real traffic replays and the real controller."""

import json
import math
import shutil

import pytest
from rollout_helpers import call, make_ctx

from cvagents.clock import ManualClock
from cvagents.config import Settings
from cvagents.durability.atomic import atomic_write_json
from cvagents.durability.hashing import sha256_file
from cvagents.durability.journal import Journal
from cvagents.models import load_checkpoint, save_checkpoint
from cvagents.offline.provider import OfflineProvider, choose_tool
from cvagents.planning.team import build_teams
from cvagents.rollout import controller as rollout
from cvagents.rollout import decisions, deployment, metrics_store
from cvagents.rollout.state import snapshot
from cvagents.run.coordinator import Coordinator, RunOptions


@pytest.fixture
def degraded_workspace(tmp_path, degraded_artifacts):
    """A workspace whose candidate (research/v1_production.pth) is the degraded model."""
    ws = tmp_path / "ws"
    shutil.copytree(degraded_artifacts / "data", ws / "data")
    shutil.copytree(degraded_artifacts / "research", ws / "research")
    (ws / "research" / "v1_degraded.pth").rename(ws / "research" / "v1_production.pth")
    return ws


def test_degraded_candidate_never_gets_past_shadow(degraded_workspace, project_root):
    settings = Settings(project_root)
    teams = build_teams(settings, lambda name, cfg: OfflineProvider())
    c = Coordinator(settings, degraded_workspace, RunOptions(meetings=3, console=False), teams, clock=ManualClock())
    try:
        result = c.run()
    finally:
        c.close()
    assert result["status"] == "finished" and result["meetings"] == 3
    ws, cfg = c.ws, c.cfg
    for stage in list(cfg.rollout.stages)[1:]:
        assert deployment.versions(ws.stage_dir(stage)) == []  # never deployed beyond shadow
    assert deployment.live(ws.stage_dir("shadow")) is None  # and rolled back out of shadow
    ds = decisions.read(ws)
    rb = [d for d in ds if d["kind"] == "rollback"]
    assert len(rb) == 1 and rb[0]["stage"] == "shadow" and rb[0]["cause"] == "gate" and rb[0]["source"] == "controller"
    assert "ndcg_at_10" in rb[0]["reason"] and rb[0]["measurements"]["ndcg_at_10_ci95_low"] < 0.72
    assert not any(d["kind"] == "promotion" for d in ds)
    j = Journal.open(c.session_dir / "trajectories", read_only=True)
    journaled = [r.data for r in j.records() if r.kind == "rollout_decision"]
    j.close()
    assert [d["id"] for d in journaled] == [d["id"] for d in ds]  # every decision is in the journal, once
    s = snapshot(ws, cfg)
    assert s["artifacts"]["model_rejected"] and s["current"] is None
    assert s["models"]["candidates"][0]["status"] == "rejected" and s["models"]["champion"] is None
    last = json.loads(sorted(ws.planning_dir.glob("actions_meeting_*.json"))[-1].read_text())
    assert last["go_no_go"]["decision"] == "no-go"
    assert "ndcg_at_10" in json.dumps(last["decisions"])
    # reported and left alone: no redeploy, no investigation loop
    tools = [choose_tool(a["action"]) for a in last["actions"]]
    assert not any(t and t[0] in ("deploy_model", "run_python_script", "rollback_model") for t in tools)


def _gather(ctx, stage, key):
    """Real evidence for the version live in ``stage``: evaluation, enough replayed traffic, drill."""
    plan = ctx.config.rollout.stages[stage]
    rpm = ctx.config.rollout.replay.requests_per_minute
    share = plan.traffic or 1.0
    minutes = max(plan.min_observed_minutes, math.ceil(plan.min_requests / (rpm * share)))
    for tool, args in (
        ("run_evaluation", {"model_path": f"deployment/{stage}"}),
        ("replay_traffic", {"stage": stage, "minutes": minutes}),
        ("run_rollback_drill", {"stage": stage}),
    ):
        o = call(ctx, tool, f"{key}#{tool}", **args)
        assert o.status == "succeeded", o.result
    metrics_store.collect(ctx.workspace.metrics_file, ctx.workspace.evaluations_dir, "t")


def _promote(ctx, src, dst, key):
    o = call(ctx, "deploy_model", key, model_path=f"deployment/{src}", stage=dst)
    assert o.status == "succeeded", o.result


@pytest.fixture
def promoted_twice(seeded_workspace):
    """v1 (A) through shadow into 5 %, then a re-released v1 (B, same weights, new sha256)
    promoted over it at 5 %: every step through the real tools and gates."""
    ctx = make_ctx(seeded_workspace, model_bytes=None)
    ws, cfg = ctx.workspace, ctx.config
    assert call(ctx, "deploy_model", "a#deploy", model_path="research/v1_production.pth", stage="shadow").ok
    _gather(ctx, "shadow", "a_shadow")
    _promote(ctx, "shadow", "5_percent", "a#promote")
    _gather(ctx, "5_percent", "a_5")
    model = load_checkpoint(ws.model_file)
    save_checkpoint(model, ws.model_file, {"release": "1.0.1"})
    assert call(ctx, "deploy_model", "b#deploy", model_path="research/v1_production.pth", stage="shadow").ok
    _gather(ctx, "shadow", "b_shadow")
    assert rollout.after_heartbeat(ws, cfg, "t0") and not [d for d in decisions.read(ws) if d["kind"] == "rollback"]
    _promote(ctx, "shadow", "5_percent", "b#promote")
    a, b = deployment.versions(ws.stage_dir("5_percent"))
    assert deployment.live(ws.stage_dir("5_percent"))["version"] == b["version"] and b["sha256"] != a["sha256"]
    return ctx, a, b


def test_a_degraded_model_slipped_into_a_later_stage_is_rolled_back(promoted_twice, degraded_artifacts):
    ctx, a, b = promoted_twice
    ws, cfg = ctx.workspace, ctx.config
    bad = degraded_artifacts / "research" / "v1_degraded.pth"
    # through the front door: refused, it is not the version live in shadow
    shutil.copyfile(bad, ws.research_dir / "v1_degraded.pth")
    o = call(ctx, "deploy_model", "x#1", model_path="research/v1_degraded.pth", stage="5_percent")
    assert o.status == "refused" and "not the version live in shadow" in o.result["reason"]
    # through the back door: B's copy at 5 % hot-patched with the degraded weights, manifests too
    d = ws.stage_dir("5_percent")
    vdir = d / "versions" / b["version"]
    shutil.copyfile(bad, vdir / b["artifact"])
    patched = {**b, "sha256": sha256_file(bad)}
    atomic_write_json(vdir / "version.json", patched)
    atomic_write_json(d / deployment.POINTER, patched)
    made = rollout.after_heartbeat(ws, cfg, "t1")
    assert made and made[0]["kind"] == "paused"  # unmeasured: not trusted, not passed
    o = call(ctx, "run_evaluation", "x#eval", model_path="deployment/5_percent")
    assert o.status == "succeeded" and o.result["ndcg_at_10_ci95"][0] < 0.72  # the regression, measured
    metrics_store.collect(ws.metrics_file, ws.evaluations_dir, "t")
    made = rollout.after_heartbeat(ws, cfg, "t2")
    rb = [x for x in made if x["kind"] == "rollback"]
    assert len(rb) == 1 and rb[0]["stage"] == "5_percent" and rb[0]["cause"] == "gate"
    assert rb[0]["rolled_back_to"] == {"version": a["version"], "sha256": a["sha256"]}  # the last good version
    assert deployment.live(d)["sha256"] == a["sha256"] and deployment.verify(d)[0]
    assert deployment.live(ws.stage_dir("shadow"))["sha256"] == b["sha256"]  # B itself did not fail anything


def test_a_corrupted_artifact_after_promotion_is_rolled_back(promoted_twice):
    ctx, a, b = promoted_twice
    ws, cfg = ctx.workspace, ctx.config
    d = ws.stage_dir("5_percent")
    with open(deployment.live_artifact(d), "r+b") as f:  # a flipped byte on disk
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    o = call(ctx, "replay_traffic", "y#replay", stage="5_percent", minutes=1)
    assert o.status == "failed" and "unhealthy" in o.result["error"]  # never measured as if it were B
    made = rollout.after_heartbeat(ws, cfg, "t1")
    assert made[0]["kind"] == "rollback" and made[0]["cause"] == "health" and "checksum mismatch" in made[0]["reason"]
    assert deployment.live(d)["version"] == a["version"]
