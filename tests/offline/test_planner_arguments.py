"""The offline planner's own action texts, read back by its own argument extraction: in every
lifecycle state, each tool call it would make names stages that exist and paths that exist in
the workspace (no sentence's full stop glued to a path), also after the rollback it asks for
first. The workspaces are real (deployments, drills, the controller), with recorded evidence."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from rollout_helpers import call, make_ctx, pass_stage, promote_through, record, submit

from cvagents.config import CoordinationConfig
from cvagents.durability.hashing import sha256_file
from cvagents.execution.tools import ToolContext
from cvagents.models.train import install_evaluation_script
from cvagents.offline.planning import plan
from cvagents.offline.provider import choose_tool
from cvagents.planning.handoff import parse_synthesis
from cvagents.rollout import controller as rollout
from cvagents.rollout.state import snapshot

STAGES = list(CoordinationConfig().rollout.stages)
EXECUTIVES = {
    "ops_commander",
    "infra_guardian",
    "latency_analyst",
    "compliance_monitor",
    "integration_engineer",
    "rollback_officer",
}
FIRST, LAST = STAGES[0], STAGES[-1]


def _ws(tmp_path: Path, model: bool = True) -> ToolContext:
    ctx = make_ctx(tmp_path / "ws", model_bytes=b"model-bytes-v1" if model else None)
    install_evaluation_script(ctx.workspace.research_dir)  # as create_v1_artifacts leaves it
    return ctx


def _through(ctx: ToolContext, model_path: str, stages: list[str], key: str) -> None:
    """Deploy ``model_path`` to the first stage and promote it, every gate passed, up to the last
    of ``stages``, whose own gates are not measured yet."""
    assert call(ctx, "deploy_model", f"{key}#{stages[0]}", model_path=model_path, stage=stages[0]).ok
    for prev, nxt in zip(stages, stages[1:]):
        pass_stage(ctx, prev, f"{key}_{prev}")
        assert call(ctx, "deploy_model", f"{key}#{nxt}", model_path=f"deployment/{prev}", stage=nxt).ok


# ------------------------------------------------------------------ the lifecycle's states


def waiting(tmp_path):
    return _ws(tmp_path)


def deployed_unmeasured(tmp_path):
    ctx = _ws(tmp_path)
    _through(ctx, "research/v1_production.pth", [FIRST], "v1")
    return ctx


def failing_at_first(tmp_path):
    ctx = deployed_unmeasured(tmp_path)
    record(ctx, FIRST, ndcg_low=0.5)
    return ctx


def failing_midway(tmp_path):
    ctx = _ws(tmp_path)
    _through(ctx, "research/v1_production.pth", STAGES[:3], "v1")
    record(ctx, STAGES[2], slo=0.5, tag="bad")
    return ctx


def passed_midway(tmp_path):
    ctx = _ws(tmp_path)
    _through(ctx, "research/v1_production.pth", STAGES[:2], "v1")
    pass_stage(ctx, STAGES[1], "v1_mid")
    return ctx


def champion(tmp_path):
    ctx = _ws(tmp_path)
    promote_through(ctx, STAGES)
    pass_stage(ctx, LAST, "p_prod")
    return ctx


def champion_failing(tmp_path):
    ctx = champion(tmp_path)
    record(ctx, LAST, ndcg_low=0.5, tag="late")
    return ctx


def candidate_waiting(tmp_path):
    ctx = champion(tmp_path)
    submit(ctx, "v2", b"model-bytes-v2")
    return ctx


def candidate_failing(tmp_path):
    ctx = candidate_waiting(tmp_path)
    _through(ctx, "research/v2.pth", [FIRST], "v2")
    record(ctx, FIRST, ndcg_low=0.5, tag="v2")
    return ctx


def candidate_rejected(tmp_path):
    ctx = candidate_failing(tmp_path)
    rollout.after_heartbeat(ctx.workspace, ctx.config, "t_v2")
    return ctx


def new_champion_failing(tmp_path):
    """v2 replaced v1 in production and then fails there, with no candidate active: the live
    artifact is v2.pth, not the guide's model file the snapshot names."""
    ctx = candidate_waiting(tmp_path)
    _through(ctx, "research/v2.pth", STAGES, "v2")
    pass_stage(ctx, LAST, "v2_prod")
    assert snapshot(ctx.workspace, ctx.config)["models"]["champion"]["name"] == "v2"
    record(ctx, LAST, ndcg_low=0.5, tag="v2_late")
    return ctx


STATES: list[Callable[[Path], ToolContext]] = [
    waiting,
    deployed_unmeasured,
    failing_at_first,
    failing_midway,
    passed_midway,
    champion,
    champion_failing,
    candidate_waiting,
    candidate_failing,
    candidate_rejected,
    new_champion_failing,
]


def _problems(ws_root: Path, tool: str, args: dict) -> list[str]:
    """What in one extracted tool call names a stage or a path that is not there."""
    bad = []
    if "stage" in args and args["stage"] not in STAGES:
        bad.append(f"stage {args['stage']!r}")
    paths = [args[k] for k in ("model_path", "validation_set", "path") if k in args]
    paths += list(args.get("paths", []))
    paths += [a for a in args.get("args", []) if "/" in a]
    bad += [f"path {p!r}" for p in paths if not (ws_root / p).exists()]
    if "validation_set" in args and not (ws_root / args["validation_set"] / "dataset_info.json").is_file():
        bad.append(f"validation set {args['validation_set']!r}")
    return bad


def _calls(ctx: ToolContext) -> list[tuple[str, tuple[str, dict] | None]]:
    p = plan(snapshot(ctx.workspace, ctx.config))
    return [(a["action"], choose_tool(a["action"])) for a in p["actions"]]


@pytest.mark.parametrize("make", STATES, ids=[f.__name__ for f in STATES])
def test_every_argument_the_planner_writes_names_a_real_stage_or_path(make, tmp_path):
    ctx = make(tmp_path)
    calls = _calls(ctx)
    assert calls and all(tool is not None for _, tool in calls), calls
    wrong = [f"{text}: {p}" for text, tool in calls if tool for p in _problems(ctx.workspace.root, *tool)]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("make", STATES, ids=[f.__name__ for f in STATES])
def test_every_plan_in_a_real_lifecycle_state_passes_the_action_schema(make, tmp_path):
    ctx = make(tmp_path)
    p = plan(snapshot(ctx.workspace, ctx.config))
    assert parse_synthesis(json.dumps(p), EXECUTIVES, 20).actions


@pytest.mark.parametrize("make", [failing_at_first, failing_midway, champion_failing, new_champion_failing])
def test_the_investigation_after_a_rollback_names_the_rolled_back_version(make, tmp_path):
    ctx = make(tmp_path)
    calls = [tool for _, tool in _calls(ctx) if tool]
    names = [t[0] for t in calls]
    assert names[:2] == ["rollback_model", "run_python_script"], names
    stage = calls[0][1]["stage"]
    live = snapshot(ctx.workspace, ctx.config)["current"]
    assert call(ctx, "rollback_model", "m#rollback", stage=stage).ok
    script = calls[1][1]
    assert script["path"] == "research/evaluate_model.py"
    opts = dict(zip(script["args"][::2], script["args"][1::2]))
    assert opts["--validation-set"] == "data/validation_set"
    model = ctx.workspace.root / opts["--model"]
    assert model.is_file() and sha256_file(model) == live["sha256"]  # the version that failed, still there
    assert not _problems(ctx.workspace.root, *calls[1])


def test_a_fresh_workspace_s_plan_names_what_creating_the_artifacts_writes(tmp_path, trained_artifacts):
    ctx = _ws(tmp_path, model=False)
    shutil.rmtree(ctx.workspace.validation_dir)
    calls = _calls(ctx)
    assert calls[0][1] == ("create_v1_artifacts", {})
    for sub in ("research", "data"):  # what create_v1_artifacts leaves (trained once per session)
        shutil.copytree(trained_artifacts / sub, ctx.workspace.root / sub, dirs_exist_ok=True)
    wrong = [f"{text}: {p}" for text, tool in calls[1:] if tool for p in _problems(ctx.workspace.root, *tool)]
    assert not wrong, "\n".join(wrong)


def test_the_investigation_script_runs_on_the_rolled_back_version(tmp_path, trained_artifacts):
    """The recovery the planner asks for after a failed gate, carried out: the rollback, then the
    evaluation script on the version that failed (before the fix, its validation set ended in '.')."""
    ctx = make_ctx(tmp_path / "ws", model_bytes=None)
    for sub in ("research", "data"):
        shutil.copytree(trained_artifacts / sub, ctx.workspace.root / sub, dirs_exist_ok=True)
    _through(ctx, "research/v1_production.pth", [FIRST], "v1")
    record(ctx, FIRST, ndcg_low=0.5)
    calls = [tool for _, tool in _calls(ctx) if tool]
    assert [t[0] for t in calls[:2]] == ["rollback_model", "run_python_script"]
    assert call(ctx, calls[0][0], "m#1", **calls[0][1]).ok
    args = calls[1][1]
    o = call(ctx, "run_python_script", "m#2", path=args["path"], args=[*args["args"], "--bootstrap", "0"])
    assert o.ok, o.result
    assert '"ndcg_at_10"' in str(o.result)
