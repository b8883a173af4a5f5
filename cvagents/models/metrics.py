"""Vectorised ranking metrics over a [num_queries, num_items] score matrix.

``relevance`` has the same shape (graded, >= 0). Every metric returns the mean as a float, or the
per-query tensor with ``per_query=True``. A query without any relevant item scores 0 (as in
sklearn.metrics.ndcg_score).
"""

from __future__ import annotations

from typing import Literal, overload

import torch

Gain = Literal["exponential", "linear"]


def _check(scores: torch.Tensor, relevance: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    scores, relevance = torch.as_tensor(scores), torch.as_tensor(relevance)
    if scores.dim() != 2 or scores.shape != relevance.shape:
        raise ValueError(
            f"scores and relevance must be 2-D and the same shape, got "
            f"{tuple(scores.shape)} and {tuple(relevance.shape)}"
        )
    return scores, relevance.to(torch.float64)


def _out(values: torch.Tensor, per_query: bool) -> torch.Tensor | float:
    return values if per_query else float(values.mean())


def _discounts(k: int) -> torch.Tensor:
    return 1.0 / torch.log2(torch.arange(k, dtype=torch.float64) + 2.0)


def _dcg_at_k(scores: torch.Tensor, gains: torch.Tensor, k: int, ties: str) -> torch.Tensor:
    """DCG@k. ties="average": items with equal scores share the average gain of their group
    (sklearn's default), so the result does not depend on how ties happen to be ordered.

    Only the top k is sorted. A tie group above the k-th score lies wholly inside the top k; the
    group at the k-th score may run past position k, so its average is taken over the whole row.
    """
    q = scores.shape[0]
    top_s, top_i = scores.topk(k, dim=1)  # sorted, best first
    g = gains.gather(1, top_i)
    disc = _discounts(k)
    if ties == "ignore":
        return (g * disc).sum(1)
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
    avg = torch.where(top_s == last, last_avg, avg)
    return (avg * disc).sum(1)


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
    if gain not in ("exponential", "linear"):
        raise ValueError(f"gain must be 'exponential' or 'linear', got {gain!r}")
    if ties not in ("average", "ignore"):
        raise ValueError(f"ties must be 'average' or 'ignore', got {ties!r}")
    scores, rel = _check(scores, relevance)
    k = min(k, scores.shape[1])
    gains = rel if gain == "linear" else torch.exp2(rel) - 1.0
    dcg = _dcg_at_k(scores, gains, k, ties)
    ideal = (gains.topk(k, dim=1).values * _discounts(k)).sum(1)
    values = torch.where(ideal > 0, dcg / ideal.clamp(min=torch.finfo(torch.float64).tiny), 0.0)
    return _out(values, per_query)


def recall_at_k(
    scores: torch.Tensor,
    relevance: torch.Tensor,
    k: int = 10,
    *,
    min_rel: float = 1,
    capped: bool = False,
    per_query: bool = False,
) -> torch.Tensor | float:
    """Share of the relevant items (rel >= min_rel) found in the top k. capped=True divides by
    min(k, #relevant) instead (BEIR's R_cap@k), so 1.0 is reachable when a query has > k relevant."""
    scores, rel = _check(scores, relevance)
    relevant = rel >= min_rel
    hits = relevant.gather(1, scores.topk(min(k, scores.shape[1]), dim=1).indices).sum(1).double()
    total = relevant.sum(1).double()
    if capped:
        total = total.clamp(max=k)
    return _out(torch.where(total > 0, hits / total.clamp(min=1), 0.0), per_query)


def mrr(
    scores: torch.Tensor, relevance: torch.Tensor, *, min_rel: float = 1, k: int | None = None, per_query: bool = False
) -> torch.Tensor | float:
    """Mean reciprocal rank of the first relevant item (optionally only within the top k)."""
    scores, rel = _check(scores, relevance)
    depth = scores.shape[1] if k is None else min(k, scores.shape[1])
    ranked = (rel >= min_rel).gather(1, scores.topk(depth, dim=1).indices)
    first = ranked.double().argmax(1)
    values = torch.where(ranked.any(1), 1.0 / (first + 1).double(), 0.0)
    return _out(values, per_query)


def bootstrap_ci(
    per_query_values: torch.Tensor, n: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean: all n resamples drawn as one [n, Q] index tensor."""
    v = torch.as_tensor(per_query_values, dtype=torch.float64).flatten()
    if v.numel() == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    gen = torch.Generator().manual_seed(seed)
    means = v[torch.randint(v.numel(), (n, v.numel()), generator=gen)].mean(1)
    low, high = torch.quantile(means, torch.tensor([alpha / 2, 1 - alpha / 2], dtype=torch.float64))
    return float(low), float(high)
