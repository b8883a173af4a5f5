"""A user's own evaluator plugs in through the config, without editing the library: a
``package.module:function`` or a script under research/ that prints its metrics as JSON. Its
metrics feed the gates like the built-in evaluator's."""

import textwrap

import pytest
from rollout_helpers import call, make_ctx

from cvagents.config import CoordinationConfig
from cvagents.execution.evaluators import EvaluatorError, normalise
from cvagents.metric_sources import METRIC_SOURCES
from cvagents.rollout import deployment, gates, metrics_store


def _cfg(**evaluation):
    return CoordinationConfig.model_validate({"evaluation": evaluation})


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """An importable package holding a user's evaluator."""
    pkg = tmp_path / "plugins" / "myeval"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "metrics.py").write_text(
        textwrap.dedent("""
        import json, os
        CALLS = []
        def evaluate(model_path, validation_set):
            CALLS.append((model_path, validation_set))
            return {"ndcg_at_10": 0.81, "ndcg_at_10_ci95": [0.79, 0.83], "latency_p95_ms": 4.2, "accuracy": 0.93,
                    "dataset_files": sorted(os.listdir(validation_set))}
        def broken(model_path, validation_set):
            return [1, 2, 3]
        def nan(model_path, validation_set):
            return {"ndcg_at_10": float("nan")}
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    return pkg


@pytest.fixture
def ctx(tmp_path):
    c = make_ctx(tmp_path / "ws")
    assert call(c, "deploy_model", "m#deploy", model_path="research/v1_production.pth", stage="shadow").ok
    return c


def test_a_function_evaluator_feeds_the_gates(ctx, plugin):
    import myeval.metrics

    ctx.config = CoordinationConfig.model_validate(
        {
            "evaluation": {"evaluator": "myeval.metrics:evaluate", "metrics": ["accuracy"]},
            "rollout": {
                "gates": {
                    "accuracy": {"metric": "accuracy", "op": ">=", "threshold": 0.9},
                    "ndcg_at_10": {"metric": "ndcg_at_10_ci95_low", "op": ">=", "threshold": 0.72},
                },
                "stages": {
                    "shadow": {"traffic": 0.0, "gates": ["accuracy", "ndcg_at_10"]},
                    "production": {"traffic": 1.0},  # a plan ends at all traffic
                },
            },
        }
    )
    o = call(ctx, "run_evaluation", "m#eval", model_path="deployment/shadow")
    assert o.status == "succeeded", o.result
    assert (
        o.result["accuracy"] == 0.93
        and o.result["ndcg_at_10_ci95_low"] == 0.79
        and o.result["evaluator"] == "myeval.metrics:evaluate"
    )
    ((model, vset),) = myeval.metrics.CALLS
    assert (
        model.endswith("v1_production.pth")
        and "deployment/shadow/versions" in model
        and vset.endswith("data/validation_set")
    )
    ws = ctx.workspace
    m = metrics_store.collect(ws.metrics_file, ws.evaluations_dir, "t")["metrics"]
    r = gates.review_stage(m, "shadow", deployment.live(ws.stage_dir("shadow"))["sha256"], ctx.config)
    assert {g.gate: (g.status, g.value) for g in r.gates} == {"accuracy": ("pass", 0.93), "ndcg_at_10": ("pass", 0.79)}


@pytest.mark.parametrize(
    "spec, error",
    [
        ("myeval.metrics:broken", "returned list, expected a dict"),
        ("myeval.metrics:nan", "must be a finite number"),
        ("myeval.metrics:missing", "has no function missing"),
        ("nosuchpkg.mod:fn", "cannot import nosuchpkg.mod"),
    ],
)
def test_a_bad_function_evaluator_fails_the_evaluation_with_a_reason(ctx, plugin, spec, error):
    ctx.config = _cfg(evaluator=spec)
    o = call(ctx, "run_evaluation", "m#eval", model_path="deployment/shadow")
    assert o.status == "failed" and error in o.result["error"]
    assert not list(ctx.workspace.evaluations_dir.glob("eval_*.json"))  # nothing recorded as evidence


SCRIPT = """
import argparse, json, os, sys
ap = argparse.ArgumentParser()
ap.add_argument("--model"); ap.add_argument("--validation-set")
a = ap.parse_args()
print("loading", a.model)                       # chatter before the JSON is fine
print(json.dumps({"ndcg_at_10": 0.77, "ndcg_at_10_ci95": [0.75, 0.79], "latency_p95_ms": 7.5,
                  "model_seen": a.model, "keys": [k for k in os.environ if "KEY" in k]}))
"""


def test_a_research_script_evaluator_prints_json(ctx, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-should-not-leak")
    (ctx.workspace.research_dir / "my_eval.py").write_text(SCRIPT)
    ctx.config = _cfg(evaluator="research/my_eval.py")
    o = call(ctx, "run_evaluation", "m#eval", model_path="deployment/shadow")
    assert o.status == "succeeded", o.result
    r = o.result
    assert r["ndcg_at_10_ci95_low"] == 0.75 and r["latency_p95_ms"] == 7.5 and r["keys"] == []
    assert r["model_seen"].startswith("deployment/shadow/versions/") and r["stage"] == "shadow"


def test_a_failing_script_evaluator_is_reported(ctx):
    (ctx.workspace.research_dir / "bad_eval.py").write_text("import sys; print('no json here'); sys.exit(0)")
    ctx.config = _cfg(evaluator="research/bad_eval.py")
    o = call(ctx, "run_evaluation", "m#eval", model_path="deployment/shadow")
    assert o.status == "failed" and "printed no JSON object" in o.result["error"]
    (ctx.workspace.research_dir / "bad_eval.py").write_text("raise SystemExit(4)")
    o = call(ctx, "run_evaluation", "m#eval2", model_path="deployment/shadow")
    assert o.status == "failed" and "exited with 4" in o.result["error"]


def test_the_guides_evaluate_script_matches_the_builtin_evaluator(seeded_workspace):
    c = make_ctx(seeded_workspace, model_bytes=None)
    assert call(c, "deploy_model", "m#deploy", model_path="research/v1_production.pth", stage="shadow").ok
    builtin = call(c, "run_evaluation", "m#builtin", model_path="deployment/shadow").result
    c.config = _cfg(evaluator="research/evaluate_model.py")
    script = call(c, "run_evaluation", "m#script", model_path="deployment/shadow")
    assert script.status == "succeeded", script.result
    for k in ("ndcg_at_10", "ndcg_at_10_ci95", "recall_at_10", "mrr", "num_queries"):
        assert script.result[k] == builtin[k]
    assert script.result["latency_p95_ms"] > 0 and script.result["evaluator"] == "research/evaluate_model.py"


@pytest.mark.parametrize("spec", ["rm -rf /", "/abs/eval.py", "pkg.mod", "pkg:fn:x"])
def test_evaluator_spec_is_checked_at_load(spec):
    with pytest.raises(Exception) as e:
        _cfg(evaluator=spec)
    assert "evaluator" in str(e.value)


def test_script_evaluator_must_live_in_a_script_folder():
    with pytest.raises(Exception) as e:
        _cfg(evaluator="data/eval.py")
    assert "evaluation.evaluator" in str(e.value) and "research" in str(e.value)
    assert _cfg(evaluator="research/sub/eval.py").evaluation.evaluator == "research/sub/eval.py"


def test_outputs_are_normalised():
    cfg = CoordinationConfig()
    out = normalise({"ndcg_at_10_ci95": [0.7, 0.8], "mrr": 1}, "x", cfg)
    assert out["ndcg_at_10_ci95_low"] == 0.7 and out["ndcg_at_10_ci95_high"] == 0.8
    with pytest.raises(EvaluatorError, match="none of the known metrics"):
        normalise({"foo": 1}, "x", cfg)
    with pytest.raises(EvaluatorError, match=r"must be \[low, high\]"):
        normalise({"ndcg_at_10_ci95": [0.7]}, "x", cfg)
    assert METRIC_SOURCES["slo_compliance"] == "traffic" and METRIC_SOURCES["rollback_test_passed"] == "drill"


def test_an_evaluator_that_does_not_compare_names_the_champion(ctx, plugin):
    """No champion: the comparison gates pass; a champion the evaluator did not compare with
    leaves them inconclusive."""
    ws = ctx.workspace
    ctx.config = _cfg(evaluator="myeval.metrics:evaluate", metrics=["accuracy"])
    assert call(ctx, "run_evaluation", "m#e1", model_path="deployment/shadow").result["champion"] is None
    sha = deployment.live(ws.stage_dir("shadow"))["sha256"]
    m = metrics_store.collect(ws.metrics_file, ws.evaluations_dir, "t")["metrics"]
    g = {g.gate: g for g in gates.review_stage(m, "shadow", sha, ctx.config).gates}
    assert g["ndcg_vs_champion"].status == g["latency_vs_champion"].status == "pass"
    (ws.research_dir / "old.pth").write_bytes(b"the champion")
    deployment.install(
        ws.stage_dir("production"), ws.research_dir / "old.pth", source_label="x", action_id="s", time="t"
    )
    o = call(ctx, "run_evaluation", "m#e2", model_path="deployment/shadow")
    prod = deployment.live(ws.stage_dir("production"))
    assert o.result["champion"] == {"name": None, "sha256": prod["sha256"], "version": prod["version"]}
    m = metrics_store.collect(ws.metrics_file, ws.evaluations_dir, "t")["metrics"]
    g = {g.gate: g for g in gates.review_stage(m, "shadow", sha, ctx.config).gates}
    assert (
        g["ndcg_vs_champion"].status == "inconclusive"
        and "not measured against the champion" in g["ndcg_vs_champion"].detail
    )


def test_the_comparison_ci_is_normalised_like_the_ndcg_ci():
    out = normalise(
        {"ndcg_at_10": 0.8, "ndcg_delta": -0.01, "ndcg_delta_ci95": [-0.02, 0.0]}, "x", CoordinationConfig()
    )
    assert out["ndcg_delta_ci95_low"] == -0.02 and out["ndcg_delta_ci95_high"] == 0.0
    with pytest.raises(EvaluatorError, match=r"ndcg_delta_ci95 must be \[low, high\]"):
        normalise({"ndcg_at_10": 0.8, "ndcg_delta_ci95": "wide"}, "x", CoordinationConfig())
    assert METRIC_SOURCES["latency_p95_ratio"] == METRIC_SOURCES["ndcg_delta_ci95_low"] == "evaluation"
