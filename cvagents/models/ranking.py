"""Ranking metrics of what a model answered (ranked document ids per query) against graded
judgments (qrels), and bootstrap confidence intervals — in numpy, so evaluating a model that is
not the demo's never imports torch.

The package's one definition of NDCG@k: gain ``2**grade - 1`` (``"exponential"``, the default;
``"linear"``: the grade itself), discount ``1 / log2(rank + 1)``, normalised by the ideal DCG of
the query's best k judgments (all of them, not only those retrieved); a query with no relevant
document scores 0. ``metrics.ndcg_at_k`` (score matrices, used by training) hands its per-rank
gains to ``ndcg_from_gains`` below, so the two cannot drift apart.

Recall@k is capped (BEIR's R_cap@k): hits / min(k, #relevant), relevant = grade >= 1; MRR@k is
the reciprocal rank of the first relevant document within the top k (0 if none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Gain = Literal["exponential", "linear"]
#: resamples are drawn this many values at a time, so memory stays bounded on big sets
_BOOTSTRAP_CHUNK = 2_000_000


def gain(grades: np.ndarray, kind: Gain = "exponential") -> np.ndarray:
    """The gain of each grade."""
    if kind not in ("exponential", "linear"):
        raise ValueError(f"gain must be 'exponential' or 'linear', got {kind!r}")
    g = np.asarray(grades, dtype=np.float64)
    return g if kind == "linear" else np.exp2(g) - 1.0


def discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(k, dtype=np.float64) + 2.0)


def ndcg_from_gains(ranked_gains: np.ndarray, ideal_gains: np.ndarray) -> np.ndarray:
    """Per-query NDCG from the gain at each rank [Q, k] and the ideal gains, best first [Q, k]."""
    disc = discounts(ranked_gains.shape[1])
    dcg = ranked_gains @ disc
    ideal = ideal_gains @ disc
    return np.where(ideal > 0, dcg / np.where(ideal > 0, ideal, 1.0), 0.0)


@dataclass(frozen=True)
class Judged:
    """The judgments of ranked lists, cut at k."""

    grades: np.ndarray  # [Q, k] grade at each rank (0: unjudged, a repeat, or past the list's end)
    ideal: np.ndarray  # [Q, k] the query's best k grades, best first
    relevant: np.ndarray  # [Q] how many judged documents have grade >= 1


def judge(ranked: Sequence[Sequence[str]], judgments: Sequence[Mapping[str, int]], k: int = 10) -> Judged:
    """Look up each ranked id in its query's judgments (a repeated id counts once)."""
    if len(ranked) != len(judgments):
        raise ValueError(f"{len(ranked)} ranked lists for {len(judgments)} queries")
    q = len(ranked)
    grades = np.zeros((q, k), dtype=np.float64)
    ideal = np.zeros((q, k), dtype=np.float64)
    relevant = np.zeros(q, dtype=np.int64)
    for i, (ids, judged) in enumerate(zip(ranked, judgments)):
        seen: set[str] = set()
        for r, doc in enumerate(ids[:k]):
            if doc not in seen:
                seen.add(doc)
                grades[i, r] = judged.get(doc, 0)
        best = sorted(judged.values(), reverse=True)[:k]
        ideal[i, : len(best)] = best
        relevant[i] = sum(1 for g in judged.values() if g >= 1)
    return Judged(grades, ideal, relevant)


def ndcg(j: Judged, kind: Gain = "exponential") -> np.ndarray:
    return ndcg_from_gains(gain(j.grades, kind), gain(j.ideal, kind))


def recall(j: Judged) -> np.ndarray:
    """Capped recall: hits / min(k, #relevant); 0 for a query with nothing relevant."""
    hits = (j.grades >= 1).sum(1)
    total = np.minimum(j.relevant, j.grades.shape[1])
    return np.where(total > 0, hits / np.maximum(total, 1), 0.0)


def mrr(j: Judged) -> np.ndarray:
    rel = j.grades >= 1
    first = rel.argmax(1)
    return np.where(rel.any(1), 1.0 / (first + 1), 0.0)


def per_query(
    ranked: Sequence[Sequence[str]], judgments: Sequence[Mapping[str, int]], k: int = 10
) -> dict[str, np.ndarray]:
    """``ndcg``, ``recall`` and ``mrr`` of each query, at ``k``."""
    j = judge(ranked, judgments, k)
    return {"ndcg": ndcg(j), "recall": recall(j), "mrr": mrr(j)}


def bootstrap_ci(
    values: Sequence[float] | np.ndarray, n: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean: each resample draws len(values) indices with
    replacement, all resamples at once (in bounded chunks)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    if n < 1:
        raise ValueError(f"bootstrap_ci needs at least one resample, got {n}")
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _BOOTSTRAP_CHUNK // v.size)
    means = np.concatenate(
        [
            v[rng.integers(0, v.size, size=(min(per_chunk, n - done), v.size), dtype=np.int32)].mean(1)
            for done in range(0, n, per_chunk)
        ]
    )
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def paired_bootstrap_ci(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, n: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """CI of the mean per-query difference ``a - b`` (the same queries resampled for both)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values must have the same shape, got {a.shape} and {b.shape}")
    return bootstrap_ci(a - b, n=n, alpha=alpha, seed=seed)
