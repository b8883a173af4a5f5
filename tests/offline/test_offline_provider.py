"""The offline provider: sensible plans for every rollout state, in each role's voice,
and the same transcript for the same state."""

import json

import pytest

from cvagents.config import Settings
from cvagents.llm.base import LLMRequest, Message, ToolSpec
from cvagents.offline.planning import plan
from cvagents.offline.provider import OfflineProvider, choose_tool
from cvagents.offline.voices import agenda
from cvagents.planning.handoff import is_action_sentence, is_measurable, parse_synthesis
from cvagents.planning.meeting import Meeting
from cvagents.planning.team import build_teams
from cvagents.run.reports import meeting_record, render_transcript

THR = {
    "ndcg_at_10_min": 0.72,
    "latency_p95_ms_max": 50.0,
    "slo_compliance_min": 0.99,
    "p0_incidents_max": 0,
    "rollback_test_required": True,
}
STAGES = ["shadow", "5_percent", "20_percent", "50_percent", "production"]


def gates(ndcg="pass", drill="pass"):
    return [
        {
            "gate": "ndcg_at_10",
            "status": ndcg,
            "value": 0.9 if ndcg == "pass" else (0.5 if ndcg == "fail" else None),
            "threshold": ">= 0.72",
            "detail": "",
        },
        {"gate": "latency_p95_ms", "status": "pass", "value": 2.0, "threshold": "< 50.0", "detail": ""},
        {"gate": "slo_compliance", "status": "pass", "value": 1.0, "threshold": ">= 0.99", "detail": ""},
        {"gate": "p0_incidents", "status": "pass", "value": 0, "threshold": "<= 0", "detail": ""},
        {
            "gate": "rollback_test",
            "status": drill,
            "value": True if drill == "pass" else None,
            "threshold": "passed",
            "detail": "",
        },
    ]


def state(model=True, stage=None, verdict=None, g=None, nxt=None, rejected=False, **kw):
    cur = None
    if stage:
        cur = {
            "stage": stage,
            "version": "v0001_abcdef12",
            "sha256": "ab" * 32,
            "evaluated": True,
            "verdict": verdict,
            "gates": g,
            "metrics": {"latency_p95_ms": 2.0, "ndcg_at_10": 0.9, "ndcg_at_10_ci95": [0.88, 0.92]},
        }
    return {
        "meeting_number": 1,
        "stages_order": STAGES,
        "thresholds": THR,
        "artifacts": {
            "model": "research/v1_production.pth" if model else None,
            "model_sha256": "ab" * 32 if model else None,
            "model_rejected": rejected,
            "validation_set": model,
        },
        "stages": {s: ({"version": "v0001_abcdef12", "sha256": "ab" * 32} if s == stage else None) for s in STAGES},
        "current": cur,
        "next_stage": nxt,
        "evaluations_recorded": 0,
        "last_execution": kw.get("last_execution", {"succeeded": [], "failed": [], "refused": []}),
        "open_actions": [],
        "failed_actions": kw.get("failed_actions", []),
    }


def tools_of(p):
    return [choose_tool(a["action"]) for a in p["actions"]]


def test_no_artifacts_creates_them_first():
    p = plan(state(model=False))
    assert tools_of(p)[0] == ("create_v1_artifacts", {})
    assert ("deploy_model", {"model_path": "research/v1_production.pth", "stage": "shadow"}) in tools_of(p)


def test_not_deployed_deploys_to_shadow():
    p = plan(state(nxt="shadow"))
    assert tools_of(p)[0] == ("deploy_model", {"model_path": "research/v1_production.pth", "stage": "shadow"})
    assert p["go_no_go"]["decision"] == "go"


def test_deployed_not_evaluated_evaluates_and_collects():
    p = plan(
        state(
            stage="shadow", verdict="inconclusive", g=gates(ndcg="inconclusive", drill="inconclusive"), nxt="5_percent"
        )
    )
    t = [x[0] for x in tools_of(p)]
    assert t == ["run_evaluation", "run_rollback_drill", "collect_metrics"]
    assert tools_of(p)[0][1]["model_path"] == "deployment/shadow"
    assert p["go_no_go"]["decision"] == "hold"


def test_gates_passed_proposes_the_next_stage_only():
    p = plan(state(stage="5_percent", verdict="pass", g=gates(), nxt="20_percent"))
    assert tools_of(p)[0] == ("deploy_model", {"model_path": "deployment/5_percent", "stage": "20_percent"})
    assert p["go_no_go"] == {"stage": "20_percent", "decision": "go", "reason": "all gates of 5_percent passed"}


def test_gate_failed_rolls_back_and_investigates():
    p = plan(state(stage="shadow", verdict="fail", g=gates(ndcg="fail"), nxt="5_percent"))
    t = tools_of(p)
    assert t[0] == ("rollback_model", {"stage": "shadow"})
    assert t[1][0] == "run_python_script" and t[1][1]["path"] == "research/evaluate_model.py"
    assert p["go_no_go"]["decision"] == "no-go"
    assert not any(x[0] == "deploy_model" for x in t)


def test_rejected_candidate_is_not_redeployed():
    p = plan(state(nxt="shadow", rejected=True))
    assert not any(x and x[0] == "deploy_model" for x in tools_of(p))
    assert p["go_no_go"]["decision"] == "no-go"


def test_production_passed_is_watched_not_promoted():
    p = plan(state(stage="production", verdict="pass", g=gates(), nxt=None))
    assert not any(x[0] == "deploy_model" for x in tools_of(p))


def test_every_plan_is_valid_and_owned_by_executives():
    owners = {
        "ops_commander",
        "infra_guardian",
        "latency_analyst",
        "compliance_monitor",
        "integration_engineer",
        "rollback_officer",
    }
    for s in [
        state(model=False),
        state(nxt="shadow"),
        state(stage="shadow", verdict="pass", g=gates(), nxt="5_percent"),
        state(stage="shadow", verdict="fail", g=gates(ndcg="fail"), nxt="5_percent"),
    ]:
        p = plan(s)
        assert 1 <= len(p["actions"]) <= 20
        assert all(a["owner"] in owners and a["priority"] in ("high", "medium", "low") for a in p["actions"])


def _approval_waiting():
    s = state(stage="5_percent", verdict="pass", g=gates(), nxt="20_percent")
    s["rollout"] = {"awaiting_approval": {"stage": "20_percent", "command": "cvagents approve 20_percent"}}
    return s


@pytest.mark.parametrize(
    "s",
    [
        state(model=False),
        state(nxt="shadow"),
        state(
            stage="shadow", verdict="inconclusive", g=gates(ndcg="inconclusive", drill="inconclusive"), nxt="5_percent"
        ),
        state(stage="shadow", verdict="pass", g=gates(), nxt="5_percent"),
        state(stage="20_percent", verdict="fail", g=gates(ndcg="fail"), nxt="50_percent"),
        state(stage="production", verdict="pass", g=gates(), nxt=None),
        state(nxt="shadow", rejected=True),
        _approval_waiting(),
        state(
            stage="shadow",
            verdict="pass",
            g=gates(),
            nxt="5_percent",
            failed_actions=[
                {
                    "action": "Run the rollback drill on shadow.",
                    "owner": "rollback_officer",
                    "status": "failed",
                    "error": "x",
                }
            ],
        ),
    ],
    ids=["no_artifacts", "start", "inconclusive", "promote", "failed", "production", "rejected", "approval", "retry"],
)
def test_every_offline_plan_passes_the_action_schema(project_root, s):
    """Sentences a person could act on, owned by executives, with something to measure: the
    offline moderator's plans pass the synthesis schema the meeting holds every moderator to."""
    owners = set(build_teams(Settings(project_root)).executive)
    syn = parse_synthesis(json.dumps(plan(s)), owners, 20)
    assert syn.actions and all(is_action_sentence(a.action) and is_measurable(a.success_criteria) for a in syn.actions)


def test_executive_turn_calls_a_tool_then_reports():
    prov = OfflineProvider()
    spec = ToolSpec("deploy_model", "", {"type": "object"})
    req = LLMRequest(
        "ops_commander",
        "lead",
        "action",
        "sys",
        (Message("user", "go"),),
        (spec,),
        context={"action": {"action": "Deploy V1.0 (research/v1_production.pth) to the shadow stage."}},
    )
    r = prov.complete(req)
    assert r.stop_reason == "tool_use" and r.tool_calls[0].name == "deploy_model"
    req2 = LLMRequest(
        "ops_commander",
        "lead",
        "action",
        "sys",
        (
            Message("user", "go"),
            Message("assistant", "", r.tool_calls),
            Message("tool", '{"status":"succeeded"}', tool_call_id=r.tool_calls[0].id, name="deploy_model"),
        ),
        (spec,),
        context=req.context,
    )
    r2 = prov.complete(req2)
    assert r2.text.startswith("RESULT: succeeded") and not r2.tool_calls


def test_roles_speak_in_their_own_voice_from_state():
    s = state(stage="shadow", verdict="fail", g=gates(ndcg="fail"), nxt="5_percent")
    prov = OfflineProvider()

    def say(agent):
        return prov.complete(
            LLMRequest(agent, agent, "contribution", "sys", (Message("user", "x"),), context={"state": s})
        ).text

    assert "| ndcg_at_10 | 0.5000 | >= 0.72 | fail |" in say("data_analyst")
    assert "riskiest open item" in say("critic").lower() and "FAILS ndcg_at_10" in say("critic")
    assert "offline provider" in say("pre_architect")


def test_same_state_same_transcript(project_root):
    settings = Settings(project_root)
    s = state(stage="shadow", verdict="inconclusive", g=gates(drill="inconclusive"), nxt="5_percent")

    def transcript():
        m = Meeting(build_teams(settings), max_actions=20)
        out = m.hold("meeting_20251013_200000", 1, "2025-10-13T20:00:00", s, ["meeting_x: earlier"])
        return render_transcript(meeting_record(out, "2025-10-13T20:00:00"))

    a, b = transcript(), transcript()
    assert a == b
    assert "offline provider (offline-rules-v1)" in a and "Moderator — agenda" in a
    s2 = state(stage="shadow", verdict="fail", g=gates(ndcg="fail"), nxt="5_percent")
    m = Meeting(build_teams(settings))
    c = render_transcript(
        meeting_record(m.hold("meeting_20251013_200000", 1, "2025-10-13T20:00:00", s2, []), "2025-10-13T20:00:00")
    )
    assert c != a


def test_missing_traffic_evidence_asks_for_the_replay_minutes_it_needs():
    g = gates()
    g[2] = {**g[2], "status": "inconclusive", "source": "traffic"}
    g.append(
        {
            "gate": "evidence",
            "status": "inconclusive",
            "value": "30 requests / 10 min",
            "threshold": ">= 150 requests, >= 30 min",
            "detail": "",
            "source": "traffic",
        }
    )
    s = state(stage="5_percent", verdict="inconclusive", g=g, nxt="20_percent")
    s["plan"] = {"5_percent": {"traffic": 0.05, "min_requests": 150, "min_observed_minutes": 30}}
    s["replay"] = {"requests_per_minute": 120, "default_minutes": 10, "max_minutes": 240}
    s["current"]["evidence"] = {"candidate_requests": 30, "observed_minutes": 10}
    p = plan(s)
    assert tools_of(p) == [("replay_traffic", {"stage": "5_percent", "minutes": 20.0}), ("collect_metrics", {})]
    assert p["go_no_go"]["decision"] == "hold"


def test_promotion_plans_evidence_for_the_next_stage():
    s = state(stage="shadow", verdict="pass", g=gates(), nxt="5_percent")
    s["plan"] = {"5_percent": {"traffic": 0.05, "min_requests": 150, "min_observed_minutes": 30}}
    t = tools_of(plan(s))
    # the quick steps first, the long replay last: one execution phase gathers it all
    assert [x[0] for x in t] == [
        "deploy_model",
        "run_evaluation",
        "run_rollback_drill",
        "replay_traffic",
        "collect_metrics",
    ]
    assert t[3] == ("replay_traffic", {"stage": "5_percent", "minutes": 30.0})
    assert [a["priority"] for a in plan(s)["actions"]] == ["high", "high", "high", "high", "low"]


def test_automatic_rollbacks_reach_the_agenda_and_the_risks():
    s = state(nxt="shadow", rejected=True)
    s["rollout"] = {
        "paused": False,
        "reason": None,
        "awaiting_approval": None,
        "rejected": {"abababababab": "failed: ndcg_at_10 0.51 (needs >= 0.72) at shadow"},
        "recent_decisions": [
            {
                "time": "t",
                "kind": "rollback",
                "stage": "shadow",
                "outcome": "rolled_back",
                "reason": "rolled back shadow from v0001 to nothing",
            }
        ],
    }
    p = plan(s)
    assert "ndcg_at_10 0.51" in p["decisions"][0]["rationale"]
    assert any("Automatic rollback" in r for r in p["risks"])
    assert "rollout controller decision (t): rolled back shadow" in agenda(s, "m")


@pytest.mark.parametrize(
    "action, call",
    [
        (
            "Deploy candidate bm25 (research/candidates/bm25.json) to the shadow stage.",
            ("deploy_model", {"model_path": "research/candidates/bm25.json", "stage": "shadow"}),
        ),
        (
            "Deploy candidate v2 (research/v2_degraded.pth) to the shadow stage, judged against the production champion.",
            ("deploy_model", {"model_path": "research/v2_degraded.pth", "stage": "shadow"}),
        ),
        (
            "Promote the version live in 20_percent (deployment/20_percent) (candidate v2) to the 50_percent stage.",
            ("deploy_model", {"model_path": "deployment/20_percent", "stage": "50_percent"}),
        ),
        (
            "Promote the version live in 50% to production.",
            ("deploy_model", {"model_path": "deployment/50_percent", "stage": "production"}),
        ),
        (
            "Evaluate research/candidates/bm25.json on the validation set data/validation_set.",
            (
                "run_evaluation",
                {"model_path": "research/candidates/bm25.json", "validation_set": "data/validation_set"},
            ),
        ),
        (
            "Evaluate the version live in production (deployment/production) on the validation set.",
            ("run_evaluation", {"model_path": "deployment/production", "validation_set": "data/validation_set"}),
        ),
    ],
)
def test_the_executive_reads_any_artifact_and_the_target_stage(action, call):
    assert choose_tool(action) == call


def test_the_agenda_shows_the_champion_and_the_candidates_waiting():
    s = state(stage="production", verdict="pass", g=gates(), nxt=None)
    s["models"] = {
        "champion": {
            "name": "v1",
            "sha256": "ab" * 6,
            "path": "research/v1_production.pth",
            "status": "champion",
            "stage": "production",
            "rejected_reason": None,
        },
        "candidates": [
            {
                "name": "v1",
                "sha256": "ab" * 6,
                "path": "research/v1_production.pth",
                "status": "champion",
                "stage": "production",
                "rejected_reason": None,
            },
            {
                "name": "v2",
                "sha256": "cd" * 6,
                "path": "research/v2.pth",
                "status": "rejected",
                "stage": None,
                "rejected_reason": "failed: ndcg_at_10 0.5 (needs >= 0.72) at shadow",
            },
            {
                "name": "v3",
                "sha256": "ef" * 6,
                "path": "research/candidates/bm25.json",
                "status": "waiting",
                "stage": None,
                "rejected_reason": None,
            },
        ],
        "active": None,
    }
    a = agenda(s, "m")
    assert "champion in production: v1 (research/v1_production.pth, sha256 abababababab)" in a
    assert "candidate v2 (research/v2.pth, sha256 cdcdcdcdcdcd): rejected: failed: ndcg_at_10 0.5" in a
    assert "candidate v3 (research/candidates/bm25.json, sha256 efefefefefef): waiting" in a
    assert "candidate v1" not in a  # the champion is listed once, as the champion
