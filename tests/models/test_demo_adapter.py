"""The demo dual encoder as the default adapter, on the trained demo models: the same answers as
its Retriever, the 0.72 gate as before, and a champion-vs-challenger evaluation."""

import json

import pytest

from cvagents.models import Retriever, evaluate_model, load_checkpoint, save_checkpoint
from cvagents.models.adapter import DEFAULT_ADAPTER, open_adapter


@pytest.fixture(scope="module")
def demo(trained_artifacts, degraded_artifacts):
    return (
        trained_artifacts / "research" / "v1_production.pth",
        degraded_artifacts / "research" / "v1_degraded.pth",
        trained_artifacts / "data" / "validation_set",
    )


def test_the_demo_adapter_answers_the_retrievers_top_10(demo):
    v1, _, vdir = demo
    texts = [q["text"] for q in json.loads((vdir / "queries.json").read_text())]
    adapter = open_adapter(DEFAULT_ADAPTER, v1, vdir)
    retriever = Retriever(v1, vdir)
    batched = adapter.query(texts, 10)  # one batch
    assert batched == [[str(i) for i, _ in retriever.rank(t, 10)] for t in texts]
    assert adapter.query(texts[:1], 10) == batched[:1] and adapter.query([], 10) == []
    qrels = json.loads((vdir / "qrels.json").read_text())
    assert set(batched[0]) & set(next(iter(qrels.values())))  # ids are the qrels' keys: str(gallery index)
    assert adapter.info == {"model_variant": "v1", "num_gallery_items": retriever.num_items}


def test_v1_passes_the_gate_and_degraded_does_not(demo):
    v1, degraded, vdir = demo
    good = evaluate_model(v1, vdir, bootstrap_samples=300)
    assert good["ndcg_at_10_ci95"][0] >= 0.72 and good["adapter"] == DEFAULT_ADAPTER
    # the ranked-list evaluation gives the NDCG training recorded from its score matrix
    assert good["ndcg_at_10"] == pytest.approx(load_checkpoint(v1).metadata["validation"]["ndcg_at_10"], abs=1e-6)
    bad = evaluate_model(degraded, vdir, bootstrap_samples=300)
    assert bad["ndcg_at_10_ci95"][0] < 0.72 and bad["model_variant"] == "degraded"


def test_degraded_against_the_v1_champion_is_clearly_worse(demo, tmp_path):
    v1, degraded, vdir = demo
    champion = {"artifact": v1, "adapter": DEFAULT_ADAPTER, "sha256": "ab" * 32, "version": "v0001", "name": "v1"}
    m = evaluate_model(degraded, vdir, champion=champion, bootstrap_samples=300)
    assert m["ndcg_delta_ci95_low"] < -0.01 and m["ndcg_delta_ci95_high"] < 0
    assert m["ndcg_delta"] == pytest.approx(m["ndcg_at_10"] - m["champion"]["ndcg_at_10"], abs=2e-6)
    assert m["champion"]["sha256"] == "ab" * 32 and m["latency_p95_ratio"] > 0
    # the same weights in another file: nothing to tell them apart
    copy = save_checkpoint(load_checkpoint(v1), tmp_path / "v1_copy.pth", {"copy": True})
    same = evaluate_model(copy, vdir, champion=champion, bootstrap_samples=300)
    assert same["ndcg_delta"] == 0.0 and same["ndcg_delta_ci95"] == [0.0, 0.0]
