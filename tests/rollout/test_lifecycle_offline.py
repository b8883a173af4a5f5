"""The V1 → V2 lifecycle as the agents see it: the candidate-centric state snapshot, and the
offline planner's plan for each lifecycle state (a pure function of that snapshot). The
workspaces are real — real deployments, real rollback drills, the real controller — with
recorded evidence instead of trained models, so each state is built in well under a second."""

from __future__ import annotations

import json

import pytest
from rollout_helpers import call, make_ctx, pass_stage, promote_through, record, submit

from cvagents.config import CoordinationConfig
from cvagents.durability.hashing import sha256_file
from cvagents.offline.planning import plan
from cvagents.offline.provider import choose_tool
from cvagents.offline.voices import agenda
from cvagents.rollout import controller as rollout
from cvagents.rollout import decisions
from cvagents.rollout.state import snapshot

STAGES = list(CoordinationConfig().rollout.stages)
FIRST, LAST = STAGES[0], STAGES[-1]


def tools(p: dict) -> list[tuple[str, dict] | None]:
    return [choose_tool(a["action"]) for a in p["actions"]]


@pytest.fixture
def champion(tmp_path):
    """v1 (the guide's model file, an implicit candidate) promoted through every stage, every
    gate of production passed: the champion."""
    ctx = make_ctx(tmp_path / "ws")
    promote_through(ctx, STAGES)
    pass_stage(ctx, LAST, "p_prod")
    return ctx


@pytest.fixture
def v2_waiting(champion):
    submit(champion, "v2", b"model-bytes-v2")
    return champion


@pytest.fixture
def v2_rejected(v2_waiting):
    """v2 deployed to shadow, measured below the NDCG gate and thrown back by the controller."""
    ctx = v2_waiting
    assert call(ctx, "deploy_model", "v2#deploy", model_path="research/v2.pth", stage=FIRST).ok
    record(ctx, FIRST, ndcg_low=0.5, tag="v2")
    made = rollout.after_heartbeat(ctx.workspace, ctx.config, "t_v2")
    assert [d["kind"] for d in made if d["kind"] == "rollback"] == ["rollback"]
    return ctx


def test_a_first_rollout_starts_at_shadow_with_the_guide_s_model(tmp_path):
    ctx = make_ctx(tmp_path / "ws")
    s = snapshot(ctx.workspace, ctx.config)
    assert s["models"]["champion"] is None and s["models"]["active"]["name"] == "v1"
    assert s["models"]["active"]["status"] == "waiting" and s["current"] is None and s["next_stage"] == FIRST
    p = plan(s)
    assert tools(p)[0] == ("deploy_model", {"model_path": "research/v1_production.pth", "stage": FIRST})
    assert [t[0] for t in tools(p)[1:] if t] == [
        "run_evaluation",
        "run_rollback_drill",
        "replay_traffic",
        "collect_metrics",
    ]
    assert p["go_no_go"]["decision"] == "go"


def test_a_champion_in_production_is_watched(champion):
    s = snapshot(champion.workspace, champion.config)
    v1 = s["models"]["champion"]
    assert v1["name"] == "v1" and v1["status"] == "champion" and v1["stage"] == LAST
    assert s["models"]["active"] is None and s["current"]["stage"] == LAST and s["current"]["verdict"] == "pass"
    p = plan(s)
    t = tools(p)
    assert [x[0] for x in t if x] == ["run_evaluation", "replay_traffic", "collect_metrics"]
    assert t[0][1]["model_path"] == f"deployment/{LAST}" and t[1][1]["stage"] == LAST
    assert t[1][1]["minutes"] == s["replay"]["default_minutes"]  # its evidence is there: a short look
    assert [a["priority"] for a in p["actions"]] == ["medium", "low", "low"]
    assert "champion v1" in p["decisions"][0]["decision"]


def test_a_submitted_candidate_is_planned_from_shadow_against_the_champion(v2_waiting):
    ws, cfg = v2_waiting.workspace, v2_waiting.config
    s = snapshot(ws, cfg)
    assert s["models"]["active"] == {
        "name": "v2",
        "sha256": sha256_file(ws.research_dir / "v2.pth")[:12],
        "path": "research/v2.pth",
        "status": "waiting",
        "stage": None,
        "rejected_reason": None,
    }
    assert s["models"]["champion"]["name"] == "v1"
    # every stage still holds v1, but the work is v2's: nothing of it is live yet
    assert s["current"] is None and s["next_stage"] == FIRST and s["artifacts"]["model"] == "research/v2.pth"
    assert not s["artifacts"]["model_rejected"]
    p = plan(s)
    first = p["actions"][0]["action"]
    assert first.startswith("Deploy candidate v2 (research/v2.pth) to the shadow stage")
    assert tools(p)[0] == ("deploy_model", {"model_path": "research/v2.pth", "stage": FIRST})
    assert [t[0] for t in tools(p)[1:] if t] == [
        "run_evaluation",
        "run_rollback_drill",
        "replay_traffic",
        "collect_metrics",
    ]
    assert all(t[1].get("stage", FIRST) == FIRST for t in tools(p) if t and t[0] != "run_evaluation")
    assert "champion v1" in p["decisions"][0]["rationale"] and "candidate v2" in p["decisions"][0]["decision"]
    assert any("candidate v2, judged against champion v1" in a["action"] for a in p["actions"][1:])
    a = agenda(s, "m")
    assert "champion in production: v1" in a and "candidate v2 (research/v2.pth" in a and "waiting" in a


def test_a_candidate_in_rollout_is_the_current_stage_not_the_champion_s_production(v2_waiting):
    ctx = v2_waiting
    ws, cfg = ctx.workspace, ctx.config
    assert call(ctx, "deploy_model", "v2#deploy", model_path="research/v2.pth", stage=FIRST).ok
    pass_stage(ctx, FIRST, "v2_shadow")
    assert call(ctx, "deploy_model", "v2#promote", model_path=f"deployment/{FIRST}", stage=STAGES[1]).ok
    s = snapshot(ws, cfg)
    v2 = sha256_file(ws.research_dir / "v2.pth")
    assert s["current"]["stage"] == STAGES[1] and s["current"]["sha256"] == v2  # not production's v1
    assert s["current"]["verdict"] == "inconclusive" and s["next_stage"] == STAGES[2]
    assert s["models"]["active"]["stage"] == STAGES[1] and s["models"]["champion"]["stage"] == LAST
    assert s["artifacts"]["model"] == "research/v2.pth"
    p = plan(s)
    assert [t[0] for t in tools(p) if t] == [
        "run_evaluation",
        "run_rollback_drill",
        "replay_traffic",
        "collect_metrics",
    ]
    assert all((t[1].get("stage") or STAGES[1]) == STAGES[1] for t in tools(p) if t and "stage" in t[1])
    pass_stage(ctx, STAGES[1], "v2_5")
    p = plan(snapshot(ws, cfg))
    assert tools(p)[0] == ("deploy_model", {"model_path": f"deployment/{STAGES[1]}", "stage": STAGES[2]})
    assert "(candidate v2, judged against champion v1)" in p["actions"][0]["action"]


def test_a_rejected_candidate_is_reported_and_left_alone(v2_rejected):
    ws, cfg = v2_rejected.workspace, v2_rejected.config
    s = snapshot(ws, cfg)
    v2 = next(c for c in s["models"]["candidates"] if c["name"] == "v2")
    assert v2["status"] == "rejected" and "ndcg_at_10" in v2["rejected_reason"] and "shadow" in v2["rejected_reason"]
    assert s["artifacts"]["model_rejected"] and s["models"]["active"] is None
    assert s["current"]["stage"] == LAST and s["models"]["champion"]["name"] == "v1"  # watching the champion
    p = plan(s)
    assert "v2" in p["decisions"][0]["decision"] and "ndcg_at_10" in p["decisions"][0]["rationale"]
    assert any("v2" in r and "ndcg_at_10" in r for r in p["risks"])
    assert p["go_no_go"]["decision"] == "no-go" and "v2" in p["go_no_go"]["reason"]
    t = [x for x in tools(p) if x]
    assert not any(x[0] in ("deploy_model", "run_python_script", "rollback_model") for x in t)  # no redeploy, no loop
    assert [x[0] for x in t] == ["run_evaluation", "replay_traffic", "collect_metrics"]
    assert all(x[1].get("stage", LAST) == LAST for x in t) and t[0][1]["model_path"] == f"deployment/{LAST}"
    assert "candidate v2" in agenda(s, "m") and "rejected" in agenda(s, "m")
    # and it stays that way: the plan of the next meeting is the same
    assert plan(snapshot(ws, cfg))["actions"] == p["actions"]


def test_the_only_candidate_rejected_with_no_champion_waits_for_a_new_one(tmp_path):
    ctx = make_ctx(tmp_path / "ws")
    assert call(ctx, "deploy_model", "v1#deploy", model_path="research/v1_production.pth", stage=FIRST).ok
    record(ctx, FIRST, ndcg_low=0.5)
    rollout.after_heartbeat(ctx.workspace, ctx.config, "t")
    assert [d["kind"] for d in decisions.read(ctx.workspace)][-1] == "rollback"
    s = snapshot(ctx.workspace, ctx.config)
    assert s["current"] is None and s["models"]["champion"] is None and s["models"]["active"] is None
    p = plan(s)
    assert [x[0] for x in tools(p) if x] == ["collect_metrics"]
    assert p["go_no_go"]["decision"] == "no-go" and "ndcg_at_10" in json.dumps(p["decisions"])
