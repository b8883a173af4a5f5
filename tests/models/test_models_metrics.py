"""NDCG@k of score matrices (training's validation): hand-computed cases, sklearn agreement, and
the same values as the ranked-list NDCG the evaluation uses."""

import math

import pytest
import torch

from cvagents.models import ranking
from cvagents.models.metrics import ndcg_at_k

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


def test_the_matrix_ndcg_is_the_ranked_list_ndcg():
    """One NDCG: a score matrix without ties gives what its ranked ids give through ranking."""
    g = torch.Generator().manual_seed(1)
    scores = torch.rand(200, 30, generator=g)
    rel = torch.randint(0, 4, (200, 30), generator=g)
    rel[:5] = 0  # queries with nothing relevant score 0 in both
    ranked = [[str(j) for j in row] for row in scores.topk(10, dim=1).indices.tolist()]
    qrels = [{str(j): int(r) for j, r in enumerate(row) if r > 0} for row in rel.tolist()]
    listed = ranking.per_query(ranked, qrels, k=10)["ndcg"]
    assert torch.allclose(ndcg_at_k(scores, rel, k=10, per_query=True), torch.from_numpy(listed), atol=1e-12)
