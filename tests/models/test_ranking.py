"""Ranking metrics of ranked id lists against graded qrels, and the (paired) bootstrap CIs."""

import math

import numpy as np
import pytest

from cvagents.models import ranking

L2 = math.log2


def test_ndcg_hand_computed_with_the_ideal_from_every_judgment():
    qrels = [{"a": 3, "b": 1, "z": 2}]  # "z" is never retrieved: the ideal still counts it
    (v,) = ranking.per_query([["b", "x", "a"]], qrels, k=3)["ndcg"]
    dcg = 1 / L2(2) + 0 + 7 / L2(4)
    ideal = 7 / L2(2) + 3 / L2(3) + 1 / L2(4)
    assert v == pytest.approx(dcg / ideal, abs=1e-12)
    assert ranking.per_query([["a", "z", "b"]], qrels, k=3)["ndcg"][0] == pytest.approx(1.0)
    linear = ranking.ndcg(ranking.judge([["b", "x", "a"]], qrels, k=3), "linear")[0]
    assert linear == pytest.approx((1 / L2(2) + 3 / L2(4)) / (3 / L2(2) + 2 / L2(3) + 1 / L2(4)))


def test_cut_off_repeats_short_lists_and_queries_without_relevant_documents():
    qrels = [{"a": 2}, {"a": 2}, {"a": 2}, {}, {"a": 0}]
    m = ranking.per_query([["x", "a"], ["a", "a", "a"], [], ["a"], ["a"]], qrels, k=1)
    assert m["ndcg"].tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]  # a at rank 2 is past k=1
    rep = ranking.judge([["x", "x", "a", "a"]], [{"x": 3, "a": 1}], k=4)
    assert rep.grades.tolist() == [[3, 0, 1, 0]]  # a repeated id counts once


def test_capped_recall_and_mrr_hand_computed():
    qrels = [{"b": 2, "d": 1}, {"a": 3}, {"q": 0}, {"b": 1, "c": 1, "d": 1}]
    ranked = [["a", "b", "c", "d"], ["a", "b", "c", "d"], ["a", "b"], ["a", "b", "c", "d"]]
    m = ranking.per_query(ranked, qrels, k=2)
    assert m["recall"].tolist() == [0.5, 1.0, 0.0, 0.5]  # the last: 1 hit / min(k=2, 3 relevant)
    assert m["mrr"].tolist() == [0.5, 1.0, 0.0, 0.5]
    assert ranking.per_query(ranked[:1], qrels[:1], k=1)["mrr"].tolist() == [0.0]


def test_shapes_and_gain_are_checked():
    with pytest.raises(ValueError, match="2 ranked lists for 1 queries"):
        ranking.judge([["a"], ["b"]], [{"a": 1}])
    with pytest.raises(ValueError, match="gain"):
        ranking.gain(np.zeros(2), "log")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same shape"):
        ranking.paired_bootstrap_ci([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        ranking.bootstrap_ci([])


def test_bootstrap_ci_contains_mean_narrows_and_is_seeded():
    rng = np.random.default_rng(0)
    small, large = rng.random(50), rng.random(5000)
    lo_s, hi_s = ranking.bootstrap_ci(small, n=1000)
    lo_l, hi_l = ranking.bootstrap_ci(large, n=1000)
    assert lo_s <= small.mean() <= hi_s and lo_l <= large.mean() <= hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 3  # ~ 1/sqrt(100) narrower
    assert ranking.bootstrap_ci(small, seed=3) == ranking.bootstrap_ci(small, seed=3)
    lo90, hi90 = ranking.bootstrap_ci(small, alpha=0.10)
    assert lo_s <= lo90 <= hi90 <= hi_s


def test_paired_bootstrap_contains_the_true_difference_and_is_deterministic():
    """Two models scored on the same queries: the per-query scores share the query's difficulty,
    so the paired CI of the difference is tight and holds the true shift."""
    rng = np.random.default_rng(7)
    difficulty = rng.random(2000)
    a = np.clip(difficulty + rng.normal(0, 0.05, 2000), 0, 1)
    b = np.clip(a - 0.03 + rng.normal(0, 0.02, 2000), 0, 1)  # b is worse by ~0.03
    true = float((a - b).mean())
    lo, hi = ranking.paired_bootstrap_ci(a, b, n=1000, seed=5)
    assert lo <= true <= hi and 0 < lo and hi < 0.05
    assert (lo, hi) == ranking.paired_bootstrap_ci(a, b, n=1000, seed=5)
    assert (lo, hi) != ranking.paired_bootstrap_ci(a, b, n=1000, seed=6)
    lo_a, hi_a = ranking.bootstrap_ci(a, seed=5)
    assert hi - lo < (hi_a - lo_a) / 3  # one model's own CI, unpaired, is far wider


def test_bootstrap_in_chunks_equals_one_draw(monkeypatch):
    """Bounded memory does not change the figures' meaning: every resample is len(values) long."""
    v = np.arange(100, dtype=float)
    monkeypatch.setattr(ranking, "_BOOTSTRAP_CHUNK", 250)  # 2 resamples per chunk
    lo, hi = ranking.bootstrap_ci(v, n=501, seed=1)
    assert 30 < lo < v.mean() < hi < 70
