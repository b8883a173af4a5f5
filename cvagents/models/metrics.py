"""NDCG@k over a [num_queries, num_items] score matrix, for training (``train.validation_ndcg``)
and the sklearn comparison in benchmarks/bench_model.py.

Models are evaluated on what they answer — ranked ids — by ``cvagents.models.ranking``; this
matrix form exists because training has scores, not ranked lists, and because tied scores need
the tie-averaged gain (sklearn's definition) that a ranked list cannot express. It is the same
NDCG: the per-rank gains computed here go through ``ranking.ndcg_from_gains`` with the same gain
and ideal. ``relevance`` has the scores' shape (graded, >= 0). A query without any relevant item
scores 0 (as in sklearn.metrics.ndcg_score).
"""

from __future__ import annotations

from typing import Literal, overload

import torch

from cvagents.models import ranking

Gain = ranking.Gain


def _check(scores: torch.Tensor, relevance: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    scores, relevance = torch.as_tensor(scores), torch.as_tensor(relevance)
    if scores.dim() != 2 or scores.shape != relevance.shape:
        raise ValueError(
            f"scores and relevance must be 2-D and the same shape, got "
            f"{tuple(scores.shape)} and {tuple(relevance.shape)}"
        )
    return scores, relevance.to(torch.float64)


def _ranked_gains(scores: torch.Tensor, gains: torch.Tensor, k: int, ties: str) -> torch.Tensor:
    """The gain at each of the top k ranks [Q, k]. ties="average": items with equal scores share
    the average gain of their group (sklearn's default), so the result does not depend on how
    ties happen to be ordered.

    Only the top k is sorted. A tie group above the k-th score lies wholly inside the top k; the
    group at the k-th score may run past position k, so its average is taken over the whole row.
    """
    q = scores.shape[0]
    top_s, top_i = scores.topk(k, dim=1)  # sorted, best first
    g = gains.gather(1, top_i)
    if ties == "ignore":
        return g
    new_group = torch.ones(q, k, dtype=torch.bool)
    new_group[:, 1:] = top_s[:, 1:] != top_s[:, :-1]
    gid = new_group.long().cumsum(1) - 1
    zeros = torch.zeros(q, k, dtype=torch.float64)
    group_sum = zeros.scatter_add(1, gid, g)
    group_len = zeros.scatter_add(1, gid, torch.ones_like(g))
    avg = (group_sum / group_len).gather(1, gid)
    last = top_s[:, -1:]
    at_last = scores == last  # [q, n]
    last_avg = torch.where(at_last, gains, 0.0).sum(1, keepdim=True) / at_last.sum(1, keepdim=True)
    return torch.where(top_s == last, last_avg, avg)


@overload
def ndcg_at_k(
    scores: torch.Tensor,
    relevance: torch.Tensor,
    k: int = ...,
    gain: Gain = ...,
    *,
    ties: Literal["average", "ignore"] = ...,
    per_query: Literal[False] = ...,
) -> float: ...


@overload
def ndcg_at_k(
    scores: torch.Tensor,
    relevance: torch.Tensor,
    k: int = ...,
    gain: Gain = ...,
    *,
    ties: Literal["average", "ignore"] = ...,
    per_query: Literal[True],
) -> torch.Tensor: ...


def ndcg_at_k(
    scores: torch.Tensor,
    relevance: torch.Tensor,
    k: int = 10,
    gain: Gain = "exponential",
    *,
    ties: Literal["average", "ignore"] = "average",
    per_query: bool = False,
) -> torch.Tensor | float:
    """NDCG@k. gain="linear" uses rel as gain (= sklearn.metrics.ndcg_score); "exponential" uses
    2**rel - 1. ties="ignore" ranks ties in torch.topk order (a little faster, not tie-invariant)."""
    if ties not in ("average", "ignore"):
        raise ValueError(f"ties must be 'average' or 'ignore', got {ties!r}")
    scores, rel = _check(scores, relevance)
    k = min(k, scores.shape[1])
    gains = torch.from_numpy(ranking.gain(rel.numpy(), gain))
    ranked = _ranked_gains(scores, gains, k, ties)
    values = torch.from_numpy(ranking.ndcg_from_gains(ranked.numpy(), gains.topk(k, dim=1).values.numpy()))
    return values if per_query else float(values.mean())
