"""The tool registry and the tools that need no model: refusals, paths, deployments."""

import json
import os

import pytest

from cvagents.config import CoordinationConfig
from cvagents.execution.tools import ToolContext, default_registry
from cvagents.rollout import decisions, deployment, metrics_store
from cvagents.workspace import Workspace


@pytest.fixture
def ctx(tmp_path):
    cfg = CoordinationConfig()
    ws = Workspace.from_config(tmp_path / "ws", cfg).create()
    (ws.research_dir / "v1_production.pth").write_bytes(b"model-bytes-v1")
    return ToolContext(ws, cfg, action_key="m#1")


@pytest.fixture
def reg():
    return default_registry()


def call(reg, ctx, name, key=None, **args):
    if key:
        ctx.action_key = key
    return reg.call(ctx, name, args)


def test_every_tool_has_a_strict_json_schema(reg):
    specs = {s.name: s for s in reg.specs()}
    assert set(specs) >= {
        "deploy_model",
        "run_evaluation",
        "collect_metrics",
        "run_python_script",
        "create_v1_artifacts",
        "check_files",
        "rollback_model",
        "run_rollback_drill",
    }
    d = specs["deploy_model"].parameters
    assert d["type"] == "object" and d["additionalProperties"] is False
    assert set(d["required"]) == {"model_path", "stage"}


def test_unknown_tool_and_bad_arguments_fail_with_what_to_fix_and_change_nothing(reg, ctx):
    """Errors the model can fix come back as the tool's error (failed), never as a refusal:
    the call is not run and no rollout decision is recorded."""
    o = call(reg, ctx, "rm_rf", path="/")
    assert o.status == "failed" and "unknown tool 'rm_rf'" in o.result["error"] and "deploy_model" in o.result["error"]
    o = call(reg, ctx, "deploy_model", model_path="research/v1_production.pth")
    assert o.status == "failed" and "argument stage: Field required" in o.result["error"]
    o = call(reg, ctx, "deploy_model", model_path="research/v1_production.pth", stage="shadow", force=True)
    assert o.status == "failed" and "argument force: Extra inputs are not permitted" in o.result["error"]
    o = call(reg, ctx, "deploy_model", model_path=["research/v1_production.pth"], stage="shadow")
    assert o.status == "failed" and "argument model_path: Input should be a valid string" in o.result["error"]
    o = call(reg, ctx, "deploy_model", model_path="research/v1_production.pth", stage="Shadow")
    assert o.status == "failed"
    assert o.result["error"] == (
        "argument stage: 'Shadow' is not allowed; expected one of shadow, 5_percent, 20_percent, 50_percent, production"
    )
    o = call(reg, ctx, "run_python_script", path="research/x.py", args=["line\nbreak"])
    assert o.status == "failed" and "control characters" in o.result["error"]
    o = call(reg, ctx, "rollout_status", stage="prod")
    assert o.status == "failed" and "argument stage: 'prod' is not allowed" in o.result["error"]
    ws = ctx.workspace
    assert not decisions.read(ws) and not any(any(ws.stage_dir(s).glob("versions/*")) for s in ws.stages)


@pytest.mark.parametrize("path", ["../outside.py", "/etc/passwd", "research/../../x.py", "deployment/evil.py"])
def test_scripts_outside_research_are_refused(reg, ctx, path, tmp_path):
    (tmp_path / "outside.py").write_text("print('ran')")
    o = call(reg, ctx, "run_python_script", path=path)
    assert o.status == "refused" and "outside the allowed folders" in o.result["reason"]


def test_symlink_escape_is_refused(reg, ctx, tmp_path):
    (tmp_path / "evil.py").write_text("print('ran')")
    os.symlink(tmp_path / "evil.py", ctx.workspace.research_dir / "link.py")
    o = call(reg, ctx, "run_python_script", path="research/link.py")
    assert o.status == "refused"


def test_script_runs_without_shell_and_without_keys(reg, ctx, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-should-not-leak-000000000000")
    (ctx.workspace.research_dir / "probe.py").write_text(
        "import os, sys, json; print(json.dumps({'argv': sys.argv[1:], 'keys': [k for k in os.environ if 'KEY' in k]}))"
    )
    o = call(reg, ctx, "run_python_script", path="research/probe.py", args=["a b", "$(whoami)", ";ls"])
    assert o.status == "succeeded"
    out = json.loads(o.result["stdout"])
    assert out == {"argv": ["a b", "$(whoami)", ";ls"], "keys": []}


def test_script_timeout_and_failure(reg, ctx):
    ctx.config = CoordinationConfig.model_validate({"tools": {"script_timeout_s": 0.5}})
    (ctx.workspace.research_dir / "slow.py").write_text("import time; time.sleep(5)")
    o = call(reg, ctx, "run_python_script", path="research/slow.py")
    assert o.status == "failed" and "timed out" in o.result["error"]
    (ctx.workspace.research_dir / "bad.py").write_text("raise SystemExit(3)")
    o = call(reg, ctx, "run_python_script", path="research/bad.py")
    assert o.status == "failed" and "exited with 3" in o.result["error"]


def test_deploy_to_shadow_writes_version_and_manifest(reg, ctx):
    o = call(reg, ctx, "deploy_model", model_path="research/v1_production.pth", stage="shadow")
    assert o.status == "succeeded", o.result
    m = json.loads((ctx.workspace.stage_dir("shadow") / "manifest.json").read_text())
    assert m["action_id"] == "m#1" and m["source"] == "research/v1_production.pth" and len(m["sha256"]) == 64
    assert (
        ctx.workspace.stage_dir("shadow") / "versions" / m["version"] / "v1_production.pth"
    ).read_bytes() == b"model-bytes-v1"
    # the same action again changes nothing
    again = call(reg, ctx, "deploy_model", model_path="research/v1_production.pth", stage="shadow")
    assert again.result.get("already_done") and len(deployment.versions(ctx.workspace.stage_dir("shadow"))) == 1


def test_skipping_a_stage_or_passing_an_unproven_gate_is_refused(reg, ctx):
    o = call(reg, ctx, "deploy_model", model_path="research/v1_production.pth", stage="20_percent")
    assert o.status == "refused" and "skip" in o.result["reason"]
    call(reg, ctx, "deploy_model", key="m#2", model_path="research/v1_production.pth", stage="shadow")
    o = call(reg, ctx, "deploy_model", key="m#3", model_path="deployment/shadow", stage="5_percent")
    assert o.status == "refused" and "INCONCLUSIVE" in o.result["reason"]
    assert deployment.live(ctx.workspace.stage_dir("5_percent")) is None


def _passing_measurements(ctx, stage, ndcg_low=0.80):
    """An evaluation and (since issue 4: SLO compliance and P0 incidents come from traffic
    replays, with the stage's minimum evidence) a replay's worth of traffic evidence."""
    live = deployment.live(ctx.workspace.stage_dir(stage))
    plan = ctx.config.rollout.stages[stage]
    metrics_store.record_evaluation(
        ctx.workspace.evaluations_dir,
        {
            "id": f"eval_{stage}",
            "kind": "evaluation",
            "time": "t",
            "stage": stage,
            "model_sha256": live["sha256"],
            "ndcg_at_10": ndcg_low + 0.02,
            "ndcg_at_10_ci95": [ndcg_low, ndcg_low + 0.04],
            "latency_p95_ms": 3.0,
            "champion": None,  # no champion in production: nothing to compare with
        },
    )
    metrics_store.record_evaluation(
        ctx.workspace.evaluations_dir,
        {
            "id": f"traffic_{stage}",
            "kind": "traffic",
            "time": "t",
            "stage": stage,
            "model_sha256": live["sha256"],
            "requests": plan.min_requests,
            "candidate_requests": plan.min_requests,
            "errors": 0,
            "within_slo": plan.min_requests,
            "observed_minutes": plan.min_observed_minutes,
            "p0_incidents": 0,
            "serve_latency_p95_ms": 1.0,
        },
    )


def test_promotion_after_gates_and_drill_pass(reg, ctx):
    call(reg, ctx, "deploy_model", key="m#1", model_path="research/v1_production.pth", stage="shadow")
    _passing_measurements(ctx, "shadow")
    drill = call(reg, ctx, "run_rollback_drill", key="m#2", stage="shadow")
    assert drill.status == "succeeded" and drill.result["passed"], drill.result
    call(reg, ctx, "collect_metrics", key="m#3")
    o = call(reg, ctx, "deploy_model", key="m#4", model_path="deployment/shadow", stage="5_percent")
    assert o.status == "succeeded", o.result


def test_failing_gate_blocks_promotion(reg, ctx):
    call(reg, ctx, "deploy_model", key="m#1", model_path="research/v1_production.pth", stage="shadow")
    _passing_measurements(ctx, "shadow", ndcg_low=0.60)
    call(reg, ctx, "run_rollback_drill", key="m#2", stage="shadow")
    call(reg, ctx, "collect_metrics", key="m#3")
    o = call(reg, ctx, "deploy_model", key="m#4", model_path="deployment/shadow", stage="5_percent")
    assert o.status == "refused" and "ndcg_at_10 fail" in o.result["reason"]


def test_rollback_is_a_pointer_swap(reg, ctx):
    call(reg, ctx, "deploy_model", key="m#1", model_path="research/v1_production.pth", stage="shadow")
    first = deployment.live(ctx.workspace.stage_dir("shadow"))["version"]
    (ctx.workspace.research_dir / "v1_production.pth").write_bytes(b"model-bytes-v2")
    call(reg, ctx, "deploy_model", key="m#2", model_path="research/v1_production.pth", stage="shadow")
    o = call(reg, ctx, "rollback_model", key="m#3", stage="shadow")
    assert o.status == "succeeded" and o.result["live_version"] == first
    assert deployment.verify(ctx.workspace.stage_dir("shadow"))[0]
    again = call(reg, ctx, "rollback_model", key="m#3", stage="shadow")
    assert again.result.get("already_done") and deployment.live(ctx.workspace.stage_dir("shadow"))["version"] == first


def test_interrupted_drill_is_repaired(reg, ctx):
    call(reg, ctx, "deploy_model", key="m#1", model_path="research/v1_production.pth", stage="shadow")
    d = ctx.workspace.stage_dir("shadow")
    live = deployment.live(d)
    deployment.drill(d).__enter__()
    deployment.point_to(d, None, action_id="x", time="t", reason="rollback drill")  # then a crash
    assert deployment.live(d) is None
    assert deployment.recover(d) and deployment.live(d)["version"] == live["version"]


def test_check_files_reports_missing(reg, ctx):
    o = call(reg, ctx, "check_files")
    assert o.status == "failed" and "runs/report/metrics.json" in o.result["error"]
    o = call(reg, ctx, "check_files", paths=["research/v1_production.pth"])
    assert o.status == "succeeded"


@pytest.mark.parametrize(
    "args, why",
    [
        (["--model", "../../etc/passwd"], "outside the allowed folders"),
        (["--model=/etc/shadow"], "outside the allowed folders"),
        (["~/.ssh/id_rsa"], "home-directory path"),
        (["--out", "research/../../escape.json"], "outside the allowed folders"),
        (["--url", "https://example.com/x"], "URL"),
    ],
)
def test_script_arguments_that_leave_the_workspace_are_refused(reg, ctx, args, why):
    (ctx.workspace.research_dir / "probe.py").write_text("print('ran')")
    o = call(reg, ctx, "run_python_script", path="research/probe.py", args=args)
    assert o.status == "refused" and why in o.result["reason"]


def test_script_arguments_inside_the_workspace_are_fine(reg, ctx):
    (ctx.workspace.research_dir / "probe.py").write_text("import sys, json; print(json.dumps(sys.argv[1:]))")
    args = [
        "--model",
        "research/v1_production.pth",
        "--validation-set=data/validation_set",
        "--bootstrap",
        "100",
        "0.5",
    ]
    o = call(reg, ctx, "run_python_script", path="research/probe.py", args=args)
    assert o.status == "succeeded" and json.loads(o.result["stdout"]) == args


def test_every_tool_with_side_effects_owns_its_recovery(reg):
    side_effects = [reg.get(n) for n in reg.names() if reg.get(n).side_effect]
    assert {t.name for t in side_effects} >= {"deploy_model", "rollback_model", "run_rollback_drill"}
    assert all(t.repair is not None for t in side_effects)  # checks a call cut off by a crash against the world


def test_statuses_keep_their_journaled_values():
    from cvagents.execution.executive import ActionStatus
    from cvagents.execution.tools import ToolStatus

    assert [s.value for s in ToolStatus] == ["succeeded", "failed", "refused"]
    assert [s.value for s in ActionStatus] == ["succeeded", "failed", "refused", "unverified"]
    assert json.dumps({"status": ToolStatus.REFUSED}) == '{"status": "refused"}'
