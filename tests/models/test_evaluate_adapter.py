"""evaluate_model through the model adapter, on toy models (no training): quality from one
batched query, latency one text per call, the paired comparison with a champion measured
interleaved, adapters closed, and an adapter's failure in its own words."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import toy_models
from toy_models import SPEC, toy_env, write_collection, write_toy

from cvagents.models import scripts
from cvagents.models.adapter import AdapterError
from cvagents.models.collection import CollectionError
from cvagents.models.evaluate import COMPARISON_PASSES, evaluate_model


@pytest.fixture
def vset(tmp_path):
    return write_collection(tmp_path / "validation_set", queries=60, docs=120)


@pytest.fixture
def spy(monkeypatch):
    """Every toy adapter opened, and every query call as (quality, number of texts)."""
    opened, calls = [], []
    load, query = toy_models.load, toy_models.ToyAdapter.query

    def spy_load(artifact, validation_set):
        a = load(artifact, validation_set)
        opened.append(a)
        return a

    def spy_query(self, texts, k):
        calls.append((self.model["quality"], len(texts)))
        return query(self, texts, k)

    monkeypatch.setattr(toy_models, "load", spy_load)
    monkeypatch.setattr(toy_models.ToyAdapter, "query", spy_query)
    return opened, calls


def _eval(model, vset, **kw):
    return evaluate_model(model, vset, adapter=SPEC, bootstrap_samples=200, warmup=3, **kw)


def _champion(path, **kw):
    return {"artifact": path, "adapter": SPEC, "sha256": None, "version": "v0001_abc", "name": "v1", **kw}


def test_quality_from_one_batched_query_latency_one_text_per_call(tmp_path, vset, spy):
    opened, calls = spy
    m = _eval(write_toy(tmp_path / "oracle.json"), vset)
    json.dumps(m)
    assert m["ndcg_at_10"] == 1.0 and m["recall_at_10"] == 1.0 and m["mrr"] == 1.0
    assert m["ndcg_at_10_ci95"] == [1.0, 1.0] and m["num_queries"] == 60 and len(m["latencies_ms"]) == 60
    assert m["adapter"] == SPEC and m["champion"] is None and "ndcg_delta" not in m
    assert m["dataset_version"] == "1" and len(m["model_sha256"]) == 64
    # warm-up, then per shard (one of 60 here) one batched query and one timed call per query
    assert calls == [("oracle", 1)] * 3 + [("oracle", 60)] + [("oracle", 1)] * 60
    assert [a.closed for a in opened] == [True]
    rev = _eval(write_toy(tmp_path / "reversed.json", "reversed"), vset)
    assert rev["ndcg_at_10"] == 0.0 and rev["ndcg_at_10_ci95"] == [0.0, 0.0]


def test_a_worse_challenger_against_the_champion_interleaved(tmp_path, vset, spy):
    opened, calls = spy
    champ = write_toy(tmp_path / "oracle.json")
    m = _eval(write_toy(tmp_path / "good.json", "good"), vset, champion=_champion(champ))
    low, high = m["ndcg_delta_ci95"]
    assert m["ndcg_delta"] < 0 and low <= m["ndcg_delta"] <= high < 0
    assert (m["ndcg_delta_ci95_low"], m["ndcg_delta_ci95_high"]) == (low, high)
    assert m["ndcg_delta"] == pytest.approx(m["ndcg_at_10"] - 1.0, abs=1e-5)
    c = m["champion"]
    assert c["name"] == "v1" and c["version"] == "v0001_abc" and c["ndcg_at_10"] == 1.0 and c["latency_p95_ms"] > 0
    assert len(c["sha256"]) == 64  # computed from the artifact when not given
    assert m["latency_p95_ratio"] > 0 and len(m["latencies_ms"]) == 60  # the first pass, as served once
    assert calls[6:8] == [("good", 60), ("oracle", 60)] and len(calls) == 2 * 3 + 2 + 2 * 60 * COMPARISON_PASSES
    timed = calls[-120:]  # one text per call, candidate and champion alternating who goes first
    assert timed[:4] == [("good", 1), ("oracle", 1), ("oracle", 1), ("good", 1)]
    assert sorted(timed) == sorted([("good", 1)] * 60 + [("oracle", 1)] * 60)
    assert len(opened) == 2 and all(a.closed for a in opened)


def test_an_equal_challenger_has_no_difference(tmp_path, vset):
    m = _eval(write_toy(tmp_path / "a.json"), vset, champion=_champion(write_toy(tmp_path / "b.json")))
    assert m["ndcg_delta"] == 0.0 and m["ndcg_delta_ci95"] == [0.0, 0.0]


def test_a_factory_that_raises_is_an_adapter_error_in_its_own_words(tmp_path, vset, spy):
    with pytest.raises(AdapterError, match="toy model asked to fail on load"):
        _eval(write_toy(tmp_path / "bad.json", fail="load"), vset)
    with pytest.raises(AdapterError, match="query failed: ToyModelError: toy model asked to fail every query"):
        _eval(write_toy(tmp_path / "q.json", fail="query"), vset)
    assert all(a.closed for a in spy[0])  # closed even when its query failed
    with pytest.raises(AdapterError, match="cannot import nosuch"):
        evaluate_model(write_toy(tmp_path / "x.json"), vset, adapter="nosuch.mod:load")


def test_an_answer_that_breaks_the_contract_is_an_adapter_error(tmp_path, vset, monkeypatch):
    monkeypatch.setattr(toy_models.ToyAdapter, "query", lambda self, texts, k: [[1, 2, 3] for _ in texts])
    with pytest.raises(AdapterError, match="answered wrongly: expected each ranked list to be a list of string ids"):
        _eval(write_toy(tmp_path / "a.json"), vset)
    monkeypatch.setattr(toy_models.ToyAdapter, "query", lambda self, texts, k: [["d0001"]])
    with pytest.raises(AdapterError, match="expected a list of 60 ranked lists, got a list of 1"):
        _eval(write_toy(tmp_path / "a.json"), vset)


def test_a_champion_that_fails_leaves_the_comparison_unmeasured(tmp_path, vset, spy):
    bad = write_toy(tmp_path / "champ.json", fail="load")
    m = _eval(write_toy(tmp_path / "cand.json"), vset, champion=_champion(bad))
    assert m["ndcg_at_10"] == 1.0 and len(m["latencies_ms"]) == 60  # the candidate is still measured
    assert "toy model asked to fail on load" in m["champion"]["error"] and m["champion"]["version"] == "v0001_abc"
    assert "ndcg_delta" not in m and "latency_p95_ratio" not in m
    assert all(a.closed for a in spy[0])


def test_a_malformed_validation_set_names_the_file(tmp_path, vset):
    (vset / "qrels.json").write_text(json.dumps({"q000": {"d0001": -1}}))
    with pytest.raises(CollectionError, match=r"qrels.json: q000.d0001: expected a whole-number grade"):
        _eval(write_toy(tmp_path / "a.json"), vset)
    with pytest.raises(FileNotFoundError):
        _eval(tmp_path / "missing.json", vset)


def test_the_evaluation_script_takes_an_adapter(tmp_path, vset):
    script = Path(scripts.__file__).parent / "evaluate_model.py"

    def run(model):
        args = ["--model", str(model), "--validation-set", str(vset), "--adapter", SPEC, "--bootstrap", "100"]
        return subprocess.run([sys.executable, str(script), *args], env=toy_env(), capture_output=True, text=True)

    ok = run(write_toy(tmp_path / "oracle.json"))
    assert ok.returncode == 0, ok.stderr
    m = json.loads(ok.stdout)
    assert m["ndcg_at_10"] == 1.0 and m["adapter"] == SPEC and "latencies_ms" not in m
    bad = run(write_toy(tmp_path / "bad.json", fail="load"))
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.startswith("error: evaluation failed: AdapterError: adapter toy_models:load failed to load")
    assert "toy model asked to fail on load" in bad.stderr
