"""The validation-set evaluation behind the rollout gates, of any model through its adapter, and
— once a version serves production — of a candidate against that champion.

Quality comes from one batched query per shard of queries (NDCG@10 with a bootstrap CI, capped
recall@10, MRR@10: ``cvagents.models.ranking``); latency from one text per call after a warm-up.
With a champion both answer the same queries, latency is measured interleaved (candidate and
champion alternate, and which goes first alternates too, so machine load hits both alike), and
the comparison is paired per query: the mean NDCG@10 difference with a paired bootstrap CI, and
the ratio of the latency P95s. For the ratio the queries are timed in ``COMPARISON_PASSES``
passes and each query counts its fastest: a sub-millisecond model's single-shot P95 is set by
the machine's hiccups (the same model against itself gave ratios from 0.54 to 1.20 on a busy
2-core box; 0.98 to 1.02 this way), while the gate is about the models.

The per-query work runs shard by shard on a compute engine (``cvagents.models.compute``: this
process, or Ray actors); whichever ran them, the shards' answers are merged here the same way,
so the metrics, CIs and gates do not depend on the engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cvagents.clock import stopwatch
from cvagents.durability.hashing import sha256_file
from cvagents.models import collection, ranking
from cvagents.models.adapter import DEFAULT_ADAPTER, AdapterError, ModelAdapter, answer_problem
from cvagents.models.compute import Engine, Loaded, LocalEngine, ModelRef


def _rounded(x: float) -> float:
    return round(float(x), 6)


def _ranked(adapter: ModelAdapter, spec: str, texts: Sequence[str], k: int) -> list[list[str]]:
    """The adapter's answer to ``texts``, checked against the contract."""
    try:
        answer = adapter.query(list(texts), k)
    except Exception as e:  # noqa: BLE001 - whatever the user's model raises
        raise AdapterError(f"adapter {spec}: query failed: {type(e).__name__}: {e}"[:500]) from None
    problem = answer_problem(answer, len(texts))
    if problem:
        raise AdapterError(f"adapter {spec}: query answered wrongly: {problem}")
    return [list(row) for row in answer]


#: timed passes over the queries when a champion is compared with: each query's fastest pass
#: gives the latency ratio, which then compares the models rather than the machine's hiccups
COMPARISON_PASSES = 3
ROLES = ("candidate", "champion")


class ChampionFailed(AdapterError):
    """The champion failed to answer: the candidate is evaluated alone, without a comparison."""


@dataclass
class EvalJob:
    """The per-query work, shard by shard (``cvagents.models.compute``): each shard's ranked
    answers from one batched query per model, then its per-query latencies, one text per call;
    with a champion the calls alternate per query (by the query's index in the whole set, so the
    order does not depend on the shards), and so does which model goes first, over ``passes``."""

    texts: list[str]
    k: int
    warmup: int
    passes: int
    required: tuple[str, ...] = ("candidate",)

    def _ranked(self, loaded: Loaded, role: str, texts: Sequence[str]) -> list[list[str]]:
        try:
            return _ranked(loaded.adapters[role], loaded.specs[role], texts, self.k)
        except AdapterError as e:
            if role == "champion":
                raise ChampionFailed(str(e)) from None
            raise

    def warm(self, loaded: Loaded) -> None:
        for role in (r for r in ROLES if r in loaded.adapters):
            for text in self.texts[: self.warmup]:
                self._ranked(loaded, role, [text])

    def __call__(self, loaded: Loaded, shard: tuple[int, int]) -> dict[str, Any]:
        lo, hi = shard
        roles = [r for r in ROLES if r in loaded.adapters]
        ranked = {r: self._ranked(loaded, r, self.texts[lo:hi]) for r in roles}
        passes: dict[str, list[list[float]]] = {r: [] for r in roles}
        for _ in range(self.passes if len(roles) > 1 else 1):
            for r in roles:
                passes[r].append([])
            for i in range(lo, hi):
                for r in roles if i % 2 == 0 else roles[::-1]:
                    lap = stopwatch()
                    self._ranked(loaded, r, [self.texts[i]])
                    passes[r][-1].append(lap.elapsed())
        return {"ranked": ranked, "passes": passes}


class _Timed:
    """One model's merged answers: ranked ids and per-query latencies, one list per pass."""

    def __init__(self, role: str, results: list[dict[str, Any]]):
        self.ranked = [row for r in results for row in r["ranked"][role]]
        n_passes = len(results[0]["passes"][role]) if results else 0
        self.passes = [[x for r in results for x in r["passes"][role][p]] for p in range(n_passes)]

    @property
    def latencies_s(self) -> list[float]:
        """Per query, as served once: the first pass."""
        return self.passes[0] if self.passes else []

    def percentiles_ms(self) -> list[float]:
        return [round(float(x), 4) for x in np.percentile(np.asarray(self.latencies_s) * 1e3, [50, 95, 99])]

    def steady_p95_ms(self) -> float:
        """P95 over the queries of each query's fastest pass."""
        return float(np.percentile(np.min(np.asarray(self.passes), axis=0) * 1e3, 95))


def evaluate_model(
    model_path: str | Path,
    validation_dir: str | Path,
    *,
    adapter: str = DEFAULT_ADAPTER,
    champion: Mapping[str, Any] | None = None,
    k: int = 10,
    bootstrap_samples: int = 1000,
    warmup: int = 10,
    seed: int = 0,
    engine: Engine | None = None,
) -> dict[str, Any]:
    """Quality and latency of a model on the validation set, as a JSON-ready dict.

        ``adapter`` names the factory that loads ``model_path`` (``package.module:factory``);
        ``champion`` — ``{"artifact", "adapter", "sha256", "version", "name"}``, as
        ``lifecycle.champion_for`` gives it — adds the paired comparison (``ndcg_delta``,
        ``ndcg_delta_ci95`` [low, high] and its bounds, ``latency_p95_ratio`` of the steady P95s)
        and a ``champion`` summary (its NDCG@10 and single-shot latency P95); without one ``champion`` is None. A champion that fails to load or to answer leaves
        ``champion.error`` and no comparison (its gates stay inconclusive). ``latencies_ms`` lists
        every per-query latency (for SLO compliance). ``engine`` runs the per-query work (default: this
    process; ``cvagents.models.compute``): every engine gives the same per-query answers, merged here
    one way. Raises ``AdapterError`` (the candidate's
        adapter failed) or ``CollectionError`` (the validation set is malformed).
    """
    total = stopwatch()
    model_path = Path(model_path)
    if not model_path.exists():
        raise FileNotFoundError(f"model file not found: {model_path}")
    engine = engine or LocalEngine()
    coll = collection.load(validation_dir)
    texts = coll.texts
    judgments = [coll.qrels.get(qid, {}) for qid in coll.ids]
    models = {"candidate": ModelRef.of(adapter, model_path, validation_dir)}
    if champion is not None:
        spec = champion.get("adapter") or DEFAULT_ADAPTER
        models["champion"] = ModelRef.of(spec, champion["artifact"], validation_dir)
    job = EvalJob(texts, k, warmup, COMPARISON_PASSES)
    champ_error = None
    try:
        out = engine.run(models, job, len(texts), "evaluation: shards")
    except ChampionFailed as e:
        champ_error = str(e)
        out = engine.run({"candidate": models["candidate"]}, job, len(texts), "evaluation: shards")
    champ_error = out.loaded.errors.get("champion", champ_error)
    if champion is not None and champ_error:
        champ_error = f"champion {champion.get('version') or champion.get('name')}: {champ_error}"
    cand = _Timed("candidate", out.results)
    scores = ranking.per_query(cand.ranked, judgments, k)
    champ, champ_scores = None, None
    if champion is not None and not champ_error:
        champ = _Timed("champion", out.results)
        champ_scores = ranking.per_query(champ.ranked, judgments, k)
    info = out.loaded.info.get("candidate")

    ndcg = scores["ndcg"]
    ci = ranking.bootstrap_ci(ndcg, n=bootstrap_samples, seed=seed) if bootstrap_samples > 0 else (ndcg.mean(),) * 2
    p50, p95, p99 = cand.percentiles_ms()
    rec: dict[str, Any] = {
        f"ndcg_at_{k}": _rounded(ndcg.mean()),
        f"ndcg_at_{k}_ci95": [_rounded(ci[0]), _rounded(ci[1])],
        f"recall_at_{k}": _rounded(scores["recall"].mean()),
        "mrr": _rounded(scores["mrr"].mean()),
        "latency_p50_ms": p50,
        "latency_p95_ms": p95,
        "latency_p99_ms": p99,
        "num_queries": len(texts),
        "ndcg_gain": "exponential",
        "bootstrap_samples": bootstrap_samples,
        "adapter": adapter,
        "model_path": str(model_path),
        "model_sha256": sha256_file(model_path) if model_path.is_file() else None,
        "validation_set": str(validation_dir),
        "dataset_version": coll.info.get("version"),
        "dataset_seed": coll.info.get("seed"),
        "champion": None,
    }
    if isinstance(info, dict):
        rec.update({key: v for key, v in info.items() if key not in rec})
    if champion is not None:
        rec.update(_comparison(champion, scores, cand, champ, champ_scores, champ_error, k, bootstrap_samples, seed))
    rec["latencies_ms"] = [round(x * 1e3, 4) for x in cand.latencies_s]
    rec["evaluated_in_s"] = round(total.elapsed(), 3)
    return rec


def _comparison(
    champion: Mapping[str, Any],
    scores: dict[str, np.ndarray],
    cand: _Timed,
    champ: _Timed | None,
    champ_scores: dict[str, np.ndarray] | None,
    error: str | None,
    k: int,
    bootstrap_samples: int,
    seed: int,
) -> dict[str, Any]:
    """The champion's summary and the paired comparison with it."""
    artifact = Path(champion["artifact"])
    summary: dict[str, Any] = {
        "name": champion.get("name"),
        "sha256": champion.get("sha256") or (sha256_file(artifact) if artifact.is_file() else None),
        "version": champion.get("version"),
        f"ndcg_at_{k}": None,
        "latency_p95_ms": None,
    }
    if champ is None or champ_scores is None:
        return {"champion": {**summary, "error": error}}
    diff = scores["ndcg"] - champ_scores["ndcg"]
    delta = float(diff.mean())
    ci = (
        ranking.paired_bootstrap_ci(scores["ndcg"], champ_scores["ndcg"], n=bootstrap_samples, seed=seed)
        if bootstrap_samples > 0
        else (delta, delta)
    )
    champ_p95 = champ.percentiles_ms()[1]
    summary.update({f"ndcg_at_{k}": _rounded(champ_scores["ndcg"].mean()), "latency_p95_ms": champ_p95})
    steady = champ.steady_p95_ms()
    return {
        "champion": summary,
        "ndcg_delta": _rounded(delta),
        "ndcg_delta_ci95": [_rounded(ci[0]), _rounded(ci[1])],
        "ndcg_delta_ci95_low": _rounded(ci[0]),
        "ndcg_delta_ci95_high": _rounded(ci[1]),
        "latency_p95_ratio": _rounded(cand.steady_p95_ms() / steady) if steady > 0 else None,
    }
