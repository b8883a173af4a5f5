"""Evaluation and traffic replay on a real local Ray (``local_ray``, 2 CPUs): the same per-query
answers, metrics and CIs as in this process, a worker that dies has its shard retried, and a
crash during a Ray evaluation resumes without evaluating twice."""

from __future__ import annotations

import io

import dying_models
import numpy as np
import pytest
from resume_helpers import Crash
from rollout_helpers import call, make_ctx
from toy_models import SPEC, write_collection, write_toy

from cvagents.config import CoordinationConfig
from cvagents.config.coordination import Compute
from cvagents.models import evaluate
from cvagents.models.compute import LocalEngine, ModelRef
from cvagents.models.evaluate import evaluate_model
from cvagents.rollout import traffic

pytest.importorskip("ray", reason="the Ray engine's tests need the ray extra: pip install cvagents[ray]")

from cvagents.models.ray_engine import RayEngine  # noqa: E402 - after the skip: it imports ray

SHARD = 7
#: measured, so not equal from run to run
TIMED = {"latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "latencies_ms", "evaluated_in_s", "latency_p95_ratio"}


def ray_engine(**kw) -> RayEngine:
    return RayEngine(Compute(engine="ray", shard_size=SHARD, workers=2, **kw))


@pytest.fixture
def per_query(monkeypatch):
    """Every per-query score array the evaluation computes, in order."""
    seen: list[dict[str, np.ndarray]] = []
    real = evaluate.ranking.per_query

    def spy(*a, **kw):
        seen.append(real(*a, **kw))
        return seen[-1]

    monkeypatch.setattr(evaluate.ranking, "per_query", spy)
    return seen


def _same_quality(a: dict, b: dict) -> None:
    assert {k: v for k, v in a.items() if k not in TIMED | {"champion"}} == {
        k: v for k, v in b.items() if k not in TIMED | {"champion"}
    }
    assert len(a["latencies_ms"]) == len(b["latencies_ms"])


def test_evaluation_on_ray_equals_local_per_query_and_ci(local_ray, tmp_path, per_query, monkeypatch):
    vset = write_collection(tmp_path / "vs", queries=40)
    cand, champ = write_toy(tmp_path / "good.json", quality="good"), write_toy(tmp_path / "oracle.json")
    champion = {"artifact": str(champ), "adapter": SPEC, "sha256": None, "version": "v0001", "name": "v1"}
    args = dict(adapter=SPEC, champion=champion, bootstrap_samples=200, warmup=2)
    local = evaluate_model(cand, vset, engine=LocalEngine(SHARD), **args)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    on_ray = evaluate_model(cand, vset, engine=ray_engine(), **args)
    assert "evaluation: shards" in terminal.getvalue() and "0/6" in terminal.getvalue()  # 40 queries in shards of 7

    _same_quality(local, on_ray)
    assert (
        local["ndcg_delta_ci95"] == on_ray["ndcg_delta_ci95"] and local["ndcg_at_10_ci95"] == on_ray["ndcg_at_10_ci95"]
    )
    assert local["ndcg_delta"] < 0 and on_ray["champion"]["ndcg_at_10"] == local["champion"]["ndcg_at_10"] == 1.0
    assert on_ray["latency_p95_ratio"] > 0
    (lc, lh), (rc, rh) = per_query[:2], per_query[2:]  # candidate, champion: local, then Ray
    for a, b in ((lc, rc), (lh, rh)):
        assert all(np.array_equal(a[m], b[m]) for m in ("ndcg", "recall", "mrr"))


def test_the_demo_model_on_ray_gives_the_same_answers(local_ray, trained_artifacts, per_query):
    model, vset = trained_artifacts / "research" / "v1_production.pth", trained_artifacts / "data" / "validation_set"
    local = evaluate_model(model, vset, bootstrap_samples=100, warmup=2, engine=LocalEngine(100))
    on_ray = evaluate_model(model, vset, bootstrap_samples=100, warmup=2, engine=RayEngine(Compute(shard_size=100)))
    _same_quality(local, on_ray)
    assert local["num_queries"] == 400 and np.array_equal(per_query[0]["ndcg"], per_query[1]["ndcg"])


@pytest.mark.parametrize("weight", [0.0, 0.2])
def test_traffic_replay_on_ray_equals_local(local_ray, tmp_path, weight):
    vset = write_collection(tmp_path / "vs", queries=30)
    texts = [f"toy query number {i}" for i in range(30)]
    cand = ModelRef.of(SPEC, write_toy(tmp_path / "good.json", quality="good"), vset)
    prod = ModelRef.of(SPEC, write_toy(tmp_path / "oracle.json"), vset)
    args = dict(weight=weight, requests=50, slo_ms=1e6, p0_error_rate=0.01, seed=3, warmup=2)
    local, _ = traffic.replay_models(LocalEngine(SHARD), cand, prod, texts, **args)
    on_ray, errors = traffic.replay_models(ray_engine(), cand, prod, texts, **args)
    assert errors == {}
    timed = {"serve_latency_p50_ms", "serve_latency_p95_ms", "serve_latency_p99_ms", "production_latency_p95_ms"}
    lpr, rpr = local.pop("per_request"), on_ray.pop("per_request")
    assert {k: v for k, v in local.items() if k not in timed} == {k: v for k, v in on_ray.items() if k not in timed}
    assert lpr["route"] == rpr["route"] and lpr["candidate_errors"] == rpr["candidate_errors"] == []
    assert [x is None for x in lpr["candidate_latency_ms"]] == [x is None for x in rpr["candidate_latency_ms"]]
    if weight == 0.0:
        assert on_ray["top10_overlap"] == local["top10_overlap"] and on_ray["overlap_n"] == 50


def test_a_worker_that_dies_mid_shard_has_its_shard_retried(local_ray, tmp_path, per_query):
    vset = write_collection(tmp_path / "vs", queries=30)
    model = write_toy(tmp_path / "good.json", quality="good")
    local = evaluate_model(model, vset, adapter=SPEC, bootstrap_samples=100, warmup=0, engine=LocalEngine(SHARD))
    on_ray = evaluate_model(
        model, vset, adapter=dying_models.SPEC, bootstrap_samples=100, warmup=0, engine=ray_engine()
    )
    assert dying_models.marker(model).read_text().isdigit()  # a worker's process did die mid-shard
    _same_quality({**local, "adapter": None}, {**on_ray, "adapter": None})
    assert np.array_equal(per_query[0]["ndcg"], per_query[1]["ndcg"])


def test_a_crash_during_a_ray_evaluation_resumes_without_evaluating_twice(local_ray, tmp_path, monkeypatch):
    cfg = CoordinationConfig.model_validate(
        {
            "compute": {"engine": "ray", "shard_size": SHARD, "workers": 2},
            "evaluation": {"bootstrap_samples": 100},
            "serving": {"adapter": SPEC},
        }
    )
    ctx = make_ctx(tmp_path / "ws", cfg, model_bytes=write_toy(tmp_path / "toy.json").read_bytes())
    write_collection(ctx.workspace.validation_dir, queries=30)
    runs: list[int] = []
    real_run, real_get = RayEngine.run, RayEngine._get

    def counted(self, *a, **kw):
        runs.append(1)
        return real_run(self, *a, **kw)

    def crash_on_second_shard(self, ref, what):
        if what.startswith("shard 2/"):
            raise Crash("coordinator killed mid-evaluation")
        return real_get(self, ref, what)

    monkeypatch.setattr(RayEngine, "run", counted)
    monkeypatch.setattr(RayEngine, "_get", crash_on_second_shard)
    with pytest.raises(Crash):
        call(ctx, "run_evaluation", "m#eval")
    assert not list(ctx.workspace.evaluations_dir.glob("eval_*.json"))  # nothing recorded: not done yet
    monkeypatch.setattr(RayEngine, "_get", real_get)
    first = call(ctx, "run_evaluation", "m#eval")  # the resumed action evaluates once
    assert first.status == "succeeded", first.result
    again = call(ctx, "run_evaluation", "m#eval")  # killed after recording: the replay finds the record
    assert again.result.pop("already_done") and again.result == first.result
    assert len(runs) == 2 and len(list(ctx.workspace.evaluations_dir.glob("eval_*.json"))) == 1
