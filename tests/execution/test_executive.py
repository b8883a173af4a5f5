"""The executive's tool loop: status from what the tools did, refusals fed back, step bound."""

from fakes import ScriptedProvider

from cvagents.config import CoordinationConfig, Settings
from cvagents.execution.executive import Executive
from cvagents.execution.tools import ToolContext, default_registry
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
