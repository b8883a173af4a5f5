"""The executive's tool loop: status from what the tools did, refusals fed back, step bound."""

import dataclasses

from fakes import ScriptedProvider

from cvagents.config import CoordinationConfig, Settings
from cvagents.execution.executive import ActionStatus, Executive, action_status
from cvagents.execution.tools import ToolContext, ToolOutcome, ToolStatus, default_registry
from cvagents.offline.provider import OfflineProvider
from cvagents.planning.handoff import HandoffAction
from cvagents.planning.team import build_teams
from cvagents.workspace import Workspace

DONE = "RESULT: succeeded — nothing more"  # the answer once the script has run out


def executive(tmp_path, project_root, provider, steps=6):
    cfg = CoordinationConfig()
    ws = Workspace.from_config(tmp_path / "ws", cfg).create(project_root)
    (ws.research_dir / "v1_production.pth").write_bytes(b"m")
    teams = build_teams(Settings(project_root), lambda n, c: provider)
    return Executive(
        teams.executive, default_registry(), lambda key: ToolContext(ws, cfg, action_key=key), max_tool_steps=steps
    ), ws


ACTION = HandoffAction(
    id=1,
    action="Deploy V1.0 to the shadow stage.",
    owner="ops_commander",
    priority="high",
    estimated_duration="5min",
    success_criteria="deployed",
)


def test_tool_loop_runs_tools_and_returns_results(tmp_path, project_root):
    p = ScriptedProvider(
        [("deploy_model", {"model_path": "research/v1_production.pth", "stage": "shadow"})],
        "RESULT: succeeded — deployed",
        otherwise=DONE,
    )
    ex, ws = executive(tmp_path, project_root, p)
    run = ex.carry_out(ACTION, "m", {})
    assert run.status == "succeeded" and run.outcomes[0].tool == "deploy_model"
    tool_msg = p.requests[1].messages[-1]
    assert tool_msg.role == "tool" and tool_msg.name == "deploy_model" and '"status": "succeeded"' in tool_msg.content
    assert {t.name for t in p.requests[0].tools} >= {"deploy_model", "run_evaluation"}


def test_invented_tool_fails_and_is_told_to_the_model(tmp_path, project_root):
    p = ScriptedProvider([("sudo", {"cmd": "rm -rf /"})], "RESULT: failed — no such tool", otherwise=DONE)
    ex, ws = executive(tmp_path, project_root, p)
    run = ex.carry_out(ACTION, "m", {})
    assert run.status == "failed" and "unknown tool 'sudo'" in run.summary()["error"]
    assert p.requests[1].messages[-1].is_error and "unknown tool 'sudo'" in p.requests[1].messages[-1].content


def test_claimed_success_without_effect_is_not_success(tmp_path, project_root):
    p = ScriptedProvider(
        [("deploy_model", {"model_path": "research/missing.pth", "stage": "shadow"})],
        "RESULT: succeeded — all good",
        otherwise=DONE,
    )
    ex, ws = executive(tmp_path, project_root, p)
    assert ex.carry_out(ACTION, "m", {}).status == "failed"


def test_step_bound(tmp_path, project_root):
    p = ScriptedProvider(*[[("check_files", {})]] * 10, otherwise=DONE)
    ex, ws = executive(tmp_path, project_root, p, steps=3)
    run = ex.carry_out(ACTION, "m", {})
    assert run.status == "failed" and "3 tool steps" in run.error and len(p.requests) == 3


def test_priority_order_and_finished_actions_skipped(tmp_path, project_root):
    ex, ws = executive(tmp_path, project_root, OfflineProvider())
    acts = [
        HandoffAction(
            id=i,
            action=f"Check the files, number {i}.",
            owner="infra_guardian",
            priority=p,
            estimated_duration="1min",
            success_criteria="all present",
        )
        for i, p in enumerate(["low", "high", "medium", "high"], 1)
    ]
    assert [a.id for a in ex.next_actions(acts, "m", set(), 3)] == [2, 4, 3]
    assert [a.id for a in ex.next_actions(acts, "m", {"m#2", "m#4"}, 3)] == [3, 1]


def _outcome(tool, ok, error="boom"):
    status = ToolStatus.SUCCEEDED if ok else ToolStatus.FAILED
    return ToolOutcome(tool, {}, status, {} if ok else {"error": error}, 0.0)


def test_action_status_comes_from_the_tools_alone():
    ok, bad = (lambda t: _outcome(t, True)), (lambda t, e="boom": _outcome(t, False, e))
    assert action_status([]) == (ActionStatus.UNVERIFIED, "no tool was called")
    assert action_status([ok("deploy_model")]) == (ActionStatus.SUCCEEDED, None)
    assert action_status([bad("deploy_model"), ok("deploy_model")]) == (ActionStatus.SUCCEEDED, None)
    # a failed tool made good only by a later success of the same tool
    assert action_status([bad("run_evaluation", "no model"), ok("create_v1_artifacts")]) == (
        ActionStatus.FAILED,
        "no model",
    )
    assert action_status([ok("run_evaluation"), bad("run_evaluation", "late")]) == (ActionStatus.FAILED, "late")
    refused = ToolOutcome("deploy_model", {}, ToolStatus.REFUSED, {"reason": "skips a stage"}, 0.0)
    assert action_status([refused, ok("deploy_model")]) == (ActionStatus.REFUSED, "skips a stage")


def test_a_claimed_success_without_a_tool_call_is_unverified_and_its_words_a_labelled_claim(tmp_path, project_root):
    p = ScriptedProvider("RESULT: succeeded — the model has been deployed to 20_percent", otherwise=DONE)
    ex, ws = executive(tmp_path, project_root, p)
    run = ex.carry_out(ACTION, "m", {})
    s = run.summary()
    assert run.status == s["status"] == "unverified" and s["error"] == "no tool was called"
    assert s["claim"] == "agent said, no tool evidence: RESULT: succeeded — the model has been deployed to 20_percent"
    assert not any(any(ws.stage_dir(x).glob("versions/*")) for x in ws.stages)


def test_a_tool_call_written_as_text_is_said_and_run_only_when_lenient(tmp_path, project_root):
    text = '<tool_call>{"name": "deploy_model", "arguments": {"model_path": "research/v1_production.pth", "stage": "shadow"}}</tool_call>'
    strict, ws = executive(tmp_path / "a", project_root, ScriptedProvider(text, otherwise=DONE))
    run = strict.carry_out(ACTION, "m", {})
    assert run.status == "unverified" and run.text_tool_calls == ["deploy_model"] and not run.outcomes
    assert run.error == "wrote a tool call as text instead of calling the tool: deploy_model"
    assert not list(ws.stage_dir("shadow").glob("versions/*"))

    p = ScriptedProvider(text, otherwise=DONE)
    lenient, ws = executive(tmp_path / "b", project_root, p)
    agent = lenient.agents["ops_commander"]
    lenient.agents["ops_commander"] = dataclasses.replace(
        agent, config=agent.config.model_copy(update={"tool_call_parsing": "lenient"})
    )
    run = lenient.carry_out(ACTION, "m", {})
    assert run.status == "succeeded" and run.outcomes[0].recovered_from_text
    assert run.outcomes[0].as_dict()["recovered_from_text"] is True
    assert list(ws.stage_dir("shadow").glob("versions/*"))
    # the conversation the model sees goes on as if it had called the tool
    sent = p.requests[1].messages
    assert sent[-2].role == "assistant" and sent[-2].tool_calls[0].name == "deploy_model"
    assert sent[-1].role == "tool" and sent[-1].tool_call_id == sent[-2].tool_calls[0].id


def test_lenient_calls_are_checked_against_the_schema_like_any_other(tmp_path, project_root):
    text = '```json\n{"name": "deploy_model", "arguments": {"stage": "shadow"}}\n```'
    p = ScriptedProvider(text, otherwise="RESULT: failed — missing argument")
    ex, ws = executive(tmp_path, project_root, p)
    agent = ex.agents["ops_commander"]
    ex.agents["ops_commander"] = dataclasses.replace(
        agent, config=agent.config.model_copy(update={"tool_call_parsing": "lenient"})
    )
    run = ex.carry_out(ACTION, "m", {})
    assert run.status == "failed" and "argument model_path: Field required" in run.error
    assert not list(ws.stage_dir("shadow").glob("versions/*"))
