"""Ranking metrics: hand-computed cases, sklearn agreement, bootstrap CI."""

import math

import pytest
import torch

from cvagents.models.metrics import bootstrap_ci, mrr, ndcg_at_k, recall_at_k

L2 = math.log2


def test_ndcg_hand_computed_linear_and_exponential():
    scores = torch.tensor([[3.0, 2.0, 1.0]])
    rel = torch.tensor([[0, 1, 2]])  # worst possible order
    dcg_lin = 0 / L2(2) + 1 / L2(3) + 2 / L2(4)
    idcg_lin = 2 / L2(2) + 1 / L2(3)
    assert ndcg_at_k(scores, rel, k=3, gain="linear") == pytest.approx(dcg_lin / idcg_lin, abs=1e-12)
    dcg_exp = 0 + 1 / L2(3) + 3 / L2(4)
    idcg_exp = 3 / L2(2) + 1 / L2(3)
    assert ndcg_at_k(scores, rel, k=3) == pytest.approx(dcg_exp / idcg_exp, abs=1e-12)
    # cut-off at k=1: the top item has gain 0
    assert ndcg_at_k(scores, rel, k=1) == 0.0


def test_ndcg_perfect_irrelevant_and_per_query():
    scores = torch.tensor([[0.9, 0.5, 0.1], [0.1, 0.2, 0.3]])
    rel = torch.tensor([[3, 2, 0], [0, 0, 0]])
    per_q = ndcg_at_k(scores, rel, k=2, per_query=True)
    assert per_q.tolist() == [1.0, 0.0]  # a query without relevant items scores 0 (as sklearn)
    assert ndcg_at_k(scores, rel, k=2) == pytest.approx(0.5)


def test_ndcg_ties_share_the_average_gain():
    scores = torch.tensor([[1.0, 1.0, 0.0]])
    rel = torch.tensor([[1, 0, 0]])
    assert ndcg_at_k(scores, rel, k=1, gain="linear") == pytest.approx(0.5)
    assert ndcg_at_k(scores, rel, k=1, gain="linear", ties="ignore") in (0.0, 1.0)


def test_shape_and_gain_are_checked():
    with pytest.raises(ValueError):
        ndcg_at_k(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError):
        ndcg_at_k(torch.zeros(2, 3), torch.zeros(2, 3), gain="log")


@pytest.mark.parametrize("k", [1, 5, 10, 40])
@pytest.mark.parametrize("tied", [False, True])
def test_ndcg_matches_sklearn(k, tied):
    metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn not installed")
    g = torch.Generator().manual_seed(k)
    scores = torch.randint(0, 6, (300, 40), generator=g).float() if tied else torch.rand(300, 40, generator=g)
    rel = torch.randint(0, 4, (300, 40), generator=g)
    rel[0] = 0
    ours = ndcg_at_k(scores, rel, k=k, gain="linear")
    theirs = metrics.ndcg_score(rel.numpy(), scores.numpy(), k=k)
    assert abs(ours - theirs) < 1e-6


def test_recall_and_mrr_hand_computed():
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6], [0.9, 0.8, 0.7, 0.6], [0.4, 0.3, 0.2, 0.1]])
    rel = torch.tensor([[0, 2, 0, 1], [3, 0, 0, 0], [0, 0, 0, 0]])
    assert recall_at_k(scores, rel, k=2, per_query=True).tolist() == [0.5, 1.0, 0.0]
    assert recall_at_k(scores, rel, k=2, min_rel=2, per_query=True).tolist() == [1.0, 1.0, 0.0]
    assert mrr(scores, rel, per_query=True).tolist() == [0.5, 1.0, 0.0]
    assert mrr(scores, rel, k=1, per_query=True).tolist() == [0.0, 1.0, 0.0]
    # capped recall divides by min(k, #relevant): here 3 relevant, the top-2 holds one of them
    many = torch.tensor([[0, 1, 1, 1]])
    assert recall_at_k(scores[:1], many, k=2) == pytest.approx(1 / 3)
    assert recall_at_k(scores[:1], many, k=2, capped=True) == pytest.approx(1 / 2)
    assert recall_at_k(scores[:1], many, k=1, capped=True) == 0.0


def test_bootstrap_ci_contains_mean_narrows_and_is_seeded():
    g = torch.Generator().manual_seed(0)
    small = torch.rand(50, generator=g)
    large = torch.rand(5000, generator=g)
    lo_s, hi_s = bootstrap_ci(small, n=1000)
    lo_l, hi_l = bootstrap_ci(large, n=1000)
    assert lo_s <= float(small.mean()) <= hi_s
    assert lo_l <= float(large.mean()) <= hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 3  # ~ 1/sqrt(100) narrower
    assert bootstrap_ci(small, seed=3) == bootstrap_ci(small, seed=3)
    lo90, hi90 = bootstrap_ci(small, alpha=0.10)
    assert lo_s <= lo90 <= hi90 <= hi_s
    with pytest.raises(ValueError):
        bootstrap_ci(torch.tensor([]))
