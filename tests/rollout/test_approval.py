"""Human approval before production: with ``require_approval: [production]`` a promotion to
production is refused with "awaiting approval" (and the run holds at that step) until
``cvagents approve`` records a yes for that very artifact."""

import json

import pytest
import yaml
from rollout_helpers import call, make_ctx, pass_stage, promote_through

from cvagents.cli import main
from cvagents.config import load_coordination_config
from cvagents.offline.planning import plan
from cvagents.offline.provider import choose_tool
from cvagents.rollout import approval, decisions, deployment
from cvagents.rollout import controller as rollout
from cvagents.rollout.state import snapshot

STAGES = ["shadow", "5_percent", "20_percent", "50_percent"]


@pytest.fixture
def setup(config_copy, tmp_path):
    p = config_copy / "configs" / "autonomous_coordination.yaml"
    d = yaml.safe_load(p.read_text())
    d["rollout"]["require_approval"] = ["production"]
    p.write_text(yaml.safe_dump(d, sort_keys=False))
    cfg = load_coordination_config(p)
    ctx = make_ctx(tmp_path / "ws", cfg)
    promote_through(ctx, STAGES, "a")
    pass_stage(ctx, "50_percent", "a_50")
    return ctx, config_copy, p


def _approve(ctx, project, cfg_path, *extra):
    return main(
        [
            "approve",
            "--workspace",
            str(ctx.workspace.root),
            "--project-root",
            str(project),
            "--coordination-config",
            str(cfg_path),
            "--stage",
            "production",
            "--by",
            "alice",
            "--json",
            *extra,
        ]
    )


def test_production_waits_for_a_human_then_proceeds(setup, capsys):
    ctx, project, cfg_path = setup
    ws, cfg = ctx.workspace, ctx.config
    o = call(ctx, "deploy_model", "m#prod", model_path="deployment/50_percent", stage="production")
    assert o.status == "refused" and o.result["reason"].startswith("awaiting approval")
    assert "cvagents approve" in o.result["reason"] and "--stage production" in o.result["reason"]
    assert deployment.live(ws.stage_dir("production")) is None
    refused = decisions.read(ws)[-1]
    assert refused["kind"] == "refused" and refused["awaiting_approval"] is True

    # the run holds at that step: the controller says so, the snapshot shows it, the plan waits
    made = rollout.after_heartbeat(ws, cfg, "t1")
    assert [d["kind"] for d in made if d["stage"] == "50_percent"] == ["awaiting_approval"]
    s = snapshot(ws, cfg)
    w = s["rollout"]["awaiting_approval"]
    assert w["stage"] == "production" and w["sha256"] == deployment.live(ws.stage_dir("50_percent"))["sha256"]
    p = plan(s)
    assert p["go_no_go"] == {
        "stage": "production",
        "decision": "hold",
        "reason": "awaiting human approval for production",
    }
    tools = [choose_tool(a["action"]) for a in p["actions"]]
    assert ("rollout_status", {}) in tools and not any(t[0] == "deploy_model" for t in tools)
    assert rollout.after_heartbeat(ws, cfg, "t2") == []  # still waiting: nothing new to record

    # a human says yes
    assert _approve(ctx, project, cfg_path, "--note", "reviewed the 50 % dashboards") == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["approved_by"] == "alice" and rec["stage"] == "production" and rec["sha256"] == w["sha256"]
    assert approval.approval(ws, "production", w["sha256"])["note"] == "reviewed the 50 % dashboards"
    made = rollout.after_heartbeat(ws, cfg, "t3")
    assert {d["kind"] for d in made} == {"approved", "gates_passed"}
    assert plan(snapshot(ws, cfg))["actions"][0]["action"].startswith("Promote the version live in 50_percent")
    o = call(ctx, "deploy_model", "m#prod2", model_path="deployment/50_percent", stage="production")
    assert o.status == "succeeded", o.result
    assert deployment.live(ws.stage_dir("production"))["sha256"] == w["sha256"]


def test_an_approval_is_bound_to_one_artifact(setup, capsys):
    ctx, project, cfg_path = setup
    ws = ctx.workspace
    assert _approve(ctx, project, cfg_path) == 0
    approved = deployment.live(ws.stage_dir("50_percent"))["sha256"]
    assert approval.approval(ws, "production", approved) is not None
    assert approval.approval(ws, "production", "0" * 64) is None
    assert approval.awaiting(ws, ctx.config, "production", "0" * 64)
    # a prefix that is not the waiting candidate's is refused
    assert _approve(ctx, project, cfg_path, "--sha", "deadbeef") == 2
    assert "not the candidate waiting" in capsys.readouterr().err


def test_nothing_to_approve(config_copy, tmp_path, capsys):
    ws = tmp_path / "empty"
    ws.mkdir()
    code = main(["approve", "--workspace", str(ws), "--project-root", str(config_copy), "--stage", "production"])
    assert code == 2 and "no candidate to approve" in capsys.readouterr().err
    code = main(["approve", "--workspace", str(ws), "--project-root", str(config_copy), "--stage", "prod"])
    assert code == 2 and "unknown stage 'prod'" in capsys.readouterr().err


def test_stages_without_approval_need_none(tmp_path):
    ctx = make_ctx(tmp_path / "ws")
    promote_through(ctx, ["shadow", "5_percent"], "a")
    assert not approval.required(ctx.config, "5_percent") and not approval.awaiting(
        ctx.workspace, ctx.config, "5_percent", "x"
    )
