"""Champion vs challenger: the comparison gates (paired NDCG@10 difference, latency P95 ratio)
are three-valued — a pass on a first rollout (no champion), inconclusive while a champion serves
but the comparison is unmeasured, pass/fail once measured — and the evaluation and the replay
go through each model's adapter, whose failure is reported in its own words."""

import subprocess
import sys

import pytest
from rollout_helpers import call, make_ctx
from toy_models import SPEC, toy_env, write_collection, write_toy

from cvagents.config import CoordinationConfig, load_coordination_config
from cvagents.config.coordination import DEFAULT_GATES, DEFAULT_PLAN
from cvagents.models import load_checkpoint, save_checkpoint
from cvagents.rollout import deployment, gates, metrics_store

SHA = "ab" * 32
COMPARISON = ("ndcg_vs_champion", "latency_vs_champion")


def _review(evaluation: dict, cfg=None):
    cfg = cfg or CoordinationConfig()
    rec = {"id": "e", "kind": "evaluation", "time": "1", "stage": "shadow", "model_sha256": SHA, **evaluation}
    m = metrics_store.empty()
    metrics_store.merge_record(m, rec)
    r = gates.review_stage(m, "shadow", SHA, cfg)
    return {g.gate: g for g in r.gates if g.gate in COMPARISON}


CHAMP = {"name": "v1", "sha256": "cd" * 32, "version": "v0001_cdcdcdcd"}


def test_the_comparison_gates_are_on_every_stage_by_default(project_root):
    assert DEFAULT_GATES["ndcg_vs_champion"] == {"metric": "ndcg_delta_ci95_low", "op": ">=", "threshold": -0.01}
    assert DEFAULT_GATES["latency_vs_champion"] == {"metric": "latency_p95_ratio", "op": "<=", "threshold": 1.2}
    for cfg in (
        CoordinationConfig(),
        load_coordination_config(project_root / "configs" / "autonomous_coordination.yaml"),
    ):
        assert cfg.rollout.gates["ndcg_vs_champion"].threshold == -0.01
        for stage, plan in cfg.rollout.stages.items():
            assert set(COMPARISON) <= set(plan.gates), stage
    assert all(set(COMPARISON) <= set(p["gates"]) for p in DEFAULT_PLAN.values())
    t = gates.thresholds_summary(CoordinationConfig())
    assert t["ndcg_delta_min"] == -0.01 and t["latency_p95_ratio_max"] == 1.2
    assert t["ndcg_at_10_min"] == 0.72 and t["latency_p95_ms_max"] == 50.0 and t["p0_incidents_max"] == 0


def test_no_champion_passes_with_the_reason():
    g = _review({"ndcg_at_10": 0.8, "champion": None})
    assert {n: r.status for n, r in g.items()} == {"ndcg_vs_champion": "pass", "latency_vs_champion": "pass"}
    assert g["ndcg_vs_champion"].detail == "no champion in production: nothing to compare with"


def test_a_champion_not_compared_with_is_inconclusive():
    g = _review({"ndcg_at_10": 0.8, "champion": CHAMP})
    assert {r.status for r in g.values()} == {"inconclusive"}
    assert "ndcg_delta_ci95_low not measured against the champion v0001_cdcdcdcd" in g["ndcg_vs_champion"].detail
    failed = _review({"ndcg_at_10": 0.8, "champion": {**CHAMP, "error": "adapter x failed to load y: boom"}})
    assert failed["latency_vs_champion"].status == "inconclusive" and "boom" in failed["latency_vs_champion"].detail
    # no evaluation at all (or one made before champions existed) is not measured either
    assert {r.status for r in _review({"ndcg_at_10": 0.8}).values()} == {"inconclusive"}


@pytest.mark.parametrize(
    "ci, ratio, expect",
    [
        ([-0.004, 0.02], 1.1, ("pass", "pass")),
        ([-0.05, -0.02], 1.1, ("fail", "pass")),
        ([-0.004, 0.02], 1.5, ("pass", "fail")),
    ],
)
def test_measured_comparisons_pass_or_fail(ci, ratio, expect):
    ev = {"champion": {**CHAMP, "ndcg_at_10": 0.9}, "ndcg_delta": sum(ci) / 2, "ndcg_delta_ci95": ci}
    g = _review({**ev, "latency_p95_ratio": ratio})  # the lower bound is read from the CI
    assert (g["ndcg_vs_champion"].status, g["latency_vs_champion"].status) == expect
    assert g["ndcg_vs_champion"].value == ci[0]
    assert "NDCG@10 difference with the champion v0001_cdcdcdcd" in g["ndcg_vs_champion"].detail


# ----------------------------------------------------------- the real demo model


@pytest.fixture
def prod_v1(seeded_workspace):
    """v1 serving production (installed directly: this is about the evaluation against it)."""
    c = make_ctx(seeded_workspace, model_bytes=None)
    ws = c.workspace
    deployment.install(
        ws.stage_dir("production"), ws.research_dir / "v1_production.pth", source_label="x", action_id="s", time="t"
    )
    return c


def _evaluate_in_shadow(c, name):
    ws = c.workspace
    assert call(c, "deploy_model", f"m#deploy_{name}", model_path=f"research/{name}", stage="shadow").ok
    o = call(c, "run_evaluation", f"m#eval_{name}", model_path="deployment/shadow")
    assert o.status == "succeeded", o.result
    m = metrics_store.collect(ws.metrics_file, ws.evaluations_dir, "t")["metrics"]
    review = gates.review_stage(m, "shadow", deployment.live(ws.stage_dir("shadow"))["sha256"], c.config)
    return o.result, {g.gate: g for g in review.gates}


def test_a_degraded_challenger_fails_against_the_v1_champion(prod_v1, degraded_artifacts):
    ws = prod_v1.workspace
    (ws.research_dir / "v1_degraded.pth").write_bytes(
        (degraded_artifacts / "research" / "v1_degraded.pth").read_bytes()
    )
    rec, g = _evaluate_in_shadow(prod_v1, "v1_degraded.pth")
    prod = deployment.live(ws.stage_dir("production"))
    assert rec["champion"]["version"] == prod["version"] and rec["champion"]["sha256"] == prod["sha256"]
    assert rec["ndcg_delta_ci95_low"] < -0.01 and rec["adapter"] == "cvagents.models.demo_adapter:load"
    assert g["ndcg_vs_champion"].status == "fail" and g["ndcg_vs_champion"].value == rec["ndcg_delta_ci95_low"]


def test_an_equal_challenger_passes_against_the_v1_champion(prod_v1):
    ws = prod_v1.workspace
    save_checkpoint(
        load_checkpoint(ws.research_dir / "v1_production.pth"), ws.research_dir / "v1_copy.pth", {"copy": 1}
    )
    rec, g = _evaluate_in_shadow(prod_v1, "v1_copy.pth")
    assert rec["ndcg_delta"] == 0.0 and rec["champion"]["ndcg_at_10"] == rec["ndcg_at_10"]
    assert g["ndcg_vs_champion"].status == "pass"


# ------------------------------------------------------------- toy models, no training


@pytest.fixture
def toy_ctx(tmp_path):
    """A workspace whose validation set is a text collection and whose models load through the
    toy adapter (``serving.adapter``)."""
    write_collection(tmp_path / "ws" / "data" / "validation_set")
    cfg = CoordinationConfig.model_validate({"serving": {"adapter": SPEC}})
    return make_ctx(tmp_path / "ws", cfg, model_bytes=None)


def test_a_factory_that_raises_fails_the_evaluation_and_crashes_the_replay(toy_ctx):
    ws = toy_ctx.workspace
    write_toy(ws.research_dir / "v1_production.pth", fail="load")
    assert call(toy_ctx, "deploy_model", "m#d", model_path="research/v1_production.pth", stage="shadow").ok
    o = call(toy_ctx, "run_evaluation", "m#e", model_path="deployment/shadow")
    assert o.status == "failed" and "ToyModelError: toy model asked to fail on load" in o.result["error"]
    assert o.result["error"].startswith(f"adapter {SPEC} failed to load")
    assert not list(ws.evaluations_dir.glob("eval_*.json"))  # nothing recorded as evidence
    r = call(toy_ctx, "replay_traffic", "m#r", stage="shadow", minutes=1)
    assert r.status == "succeeded", r.result
    assert r.result["crashed"] and r.result["p0_incidents"] >= 1
    assert "toy model asked to fail on load" in r.result["incidents"][0] and r.result["incidents"][0].startswith("P0")


def test_a_toy_model_rolls_through_evaluation_and_replay_by_ids(toy_ctx):
    ws = toy_ctx.workspace
    write_toy(ws.research_dir / "v1_production.pth", "good")
    write_toy(ws.research_dir / "prod.pth", "oracle")
    deployment.install(
        ws.stage_dir("production"), ws.research_dir / "prod.pth", source_label="x", action_id="s", time="t"
    )
    assert call(toy_ctx, "deploy_model", "m#d", model_path="research/v1_production.pth", stage="shadow").ok
    e = call(toy_ctx, "run_evaluation", "m#e", model_path="deployment/shadow").result
    assert e["adapter"] == SPEC and e["champion"]["ndcg_at_10"] == 1.0 and e["ndcg_delta"] < 0
    r = call(toy_ctx, "replay_traffic", "m#r", stage="shadow", minutes=1).result
    assert r["errors"] == 0 and r["comparison"] == "top-10 overlap with production" and r["top10_overlap"] == 1.0


REPLAY_WITHOUT_TORCH = """
import sys
from pathlib import Path
from rollout_helpers import call, make_ctx
from toy_models import SPEC, write_collection, write_toy
from cvagents.config import CoordinationConfig
root = Path(sys.argv[1])
write_collection(root / "data" / "validation_set")
ctx = make_ctx(root, CoordinationConfig.model_validate({"serving": {"adapter": SPEC}}), model_bytes=None)
write_toy(ctx.workspace.research_dir / "v1_production.pth")
assert call(ctx, "deploy_model", "m#d", model_path="research/v1_production.pth", stage="shadow").ok
o = call(ctx, "replay_traffic", "m#r", stage="shadow", minutes=1)
assert o.ok and o.result["errors"] == 0, o.result
print("torch" in sys.modules)
"""


def test_replaying_a_model_that_is_not_the_demo_never_imports_torch(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", REPLAY_WITHOUT_TORCH, str(tmp_path / "ws")],
        env=toy_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
