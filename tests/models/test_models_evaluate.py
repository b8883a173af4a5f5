"""Retriever and evaluate_model on a briefly trained model (quality is tested in test_models_train)."""

import json
import time

import pytest
import torch

from cvagents.durability.hashing import sha256_file
from cvagents.models import Retriever, evaluate_model, load_checkpoint
from cvagents.models.adapter import AdapterError
from cvagents.models.collection import CollectionError
from cvagents.models.dual_encoder import CheckpointError, save_checkpoint
from cvagents.models.train import ensure_validation_set, train


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    vs, _ = ensure_validation_set(root / "validation_set", seed=0)
    model, _ = train("v1", seed=0, steps=120)
    path = save_checkpoint(model, root / "model.pth", {"created": "test"})
    return path, root / "validation_set", vs


def test_evaluate_model_reports_every_field(artifacts):
    path, vdir, vs = artifacts
    m = evaluate_model(path, vdir, bootstrap_samples=500)
    json.dumps(m)  # JSON-ready
    low, high = m["ndcg_at_10_ci95"]
    assert 0 < low <= m["ndcg_at_10"] <= high < 1
    assert 0 < m["recall_at_10"] <= 1 and 0 < m["mrr"] <= 1
    assert 0 < m["latency_p50_ms"] <= m["latency_p95_ms"] <= m["latency_p99_ms"]
    assert m["num_queries"] == len(vs.queries) == len(m["latencies_ms"])
    assert all(x > 0 for x in m["latencies_ms"])
    assert m["model_sha256"] == sha256_file(path) and m["model_path"] == str(path)
    assert m["model_variant"] == "v1" and m["evaluated_in_s"] > 0
    assert m["adapter"] == "cvagents.models.demo_adapter:load" and m["champion"] is None
    assert "ndcg_delta" not in m and "latency_p95_ratio" not in m  # nothing to compare with


def test_evaluate_model_is_reproducible_and_bootstrap_optional(artifacts):
    path, vdir, _ = artifacts
    a = evaluate_model(path, vdir, bootstrap_samples=0, warmup=0)
    b = evaluate_model(path, vdir, bootstrap_samples=0, warmup=0)
    assert a["ndcg_at_10"] == b["ndcg_at_10"] and a["mrr"] == b["mrr"]
    assert a["ndcg_at_10_ci95"] == [a["ndcg_at_10"], a["ndcg_at_10"]]


def test_retriever_ranks_consistently_with_batch_scores(artifacts):
    path, vdir, vs = artifacts
    r = Retriever(path, vdir)  # gallery from the validation-set folder
    scores = r.scores(vs.texts[:20])
    for i, text in enumerate(vs.texts[:20]):
        top = r.rank(text, k=10)
        assert len(top) == 10
        values = [s for _, s in top]
        assert values == sorted(values, reverse=True)
        assert all(0 <= j < r.num_items for j, _ in top)
        assert torch.allclose(torch.tensor(values), scores[i].topk(10).values, atol=1e-5)
    # the best hit is the right object for most queries
    first_hit_relevant = [vs.relevance[i, r.rank(t, k=1)[0][0]] > 0 for i, t in enumerate(vs.texts[:100])]
    assert sum(first_hit_relevant) >= 60


def test_retriever_handles_odd_queries_and_is_fast(artifacts):
    path, _, vs = artifacts
    r = Retriever(load_checkpoint(path), vs.images)
    assert len(r.rank("", k=5)) == 5
    assert len(r.rank("completely unknown words", k=3)) == 3
    assert len(r.rank("Big RED circles, centre!", k=10_000)) == r.num_items
    r.rank("red circle")
    times = []
    for _ in range(50):
        t = time.perf_counter()
        r.rank("a large red circle on the left")
        times.append(time.perf_counter() - t)
    assert sorted(times)[25] < 0.010  # median single-query latency under 10 ms


def test_bad_model_files_fail_clearly(artifacts, tmp_path):
    _, vdir, _ = artifacts
    with pytest.raises(FileNotFoundError):
        evaluate_model(tmp_path / "missing.pth", vdir)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_checkpoint(junk)
    other = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), other)
    with pytest.raises(CheckpointError, match="expected a"):
        load_checkpoint(other)
    with pytest.raises(CollectionError, match="dataset_info.json: not found"):
        evaluate_model(junk, tmp_path)  # validation set missing
    with pytest.raises(AdapterError, match=r"failed to load .*junk.pth: CheckpointError"):
        evaluate_model(junk, vdir)  # the adapter's own message
