"""Retrieval with a trained dual encoder, and the validation-set evaluation behind the rollout gates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from cvagents.clock import stopwatch
from cvagents.durability.hashing import sha256_file
from cvagents.models.data import load_validation
from cvagents.models.dual_encoder import DualEncoder, load_checkpoint
from cvagents.models.metrics import bootstrap_ci, mrr, ndcg_at_k, recall_at_k


def _gallery_images(gallery: str | Path | torch.Tensor) -> torch.Tensor:
    if isinstance(gallery, torch.Tensor):
        return gallery
    path = Path(gallery)
    if path.is_dir():
        path = path / "gallery.pt"
    if not path.is_file():
        raise FileNotFoundError(f"gallery not found: {path}")
    obj = torch.load(path, map_location="cpu", weights_only=True)
    return obj["images"] if isinstance(obj, dict) else obj


class Retriever:
    """Text-to-image search over a fixed gallery whose embeddings are computed once.

    ``model``: a checkpoint path or a DualEncoder; ``gallery``: image tensor [N, 3, H, W]
    (float in [0, 1] or uint8), a gallery.pt file, or a validation-set folder holding one.
    """

    def __init__(self, model: str | Path | DualEncoder, gallery: str | Path | torch.Tensor):
        self.model = model if isinstance(model, DualEncoder) else load_checkpoint(model)
        self.model.eval()
        with torch.inference_mode():
            emb = self.model.encode_images(_gallery_images(gallery))
        self._gallery_t = emb.T.contiguous()  # [D, N]: one query is a [1, D] @ [D, N] product
        self.num_items = emb.shape[0]

    def scores(self, texts: list[str]) -> torch.Tensor:
        """Cosine similarities [len(texts), N]."""
        with torch.inference_mode():
            return self.model.encode_text(list(texts)) @ self._gallery_t

    def rank(self, query_text: str, k: int = 10) -> list[tuple[int, float]]:
        """Top-k (gallery index, score), best first."""
        with torch.inference_mode():
            s = (self.model.encode_text([query_text]) @ self._gallery_t)[0]
            values, idx = s.topk(min(k, self.num_items))
        return list(zip(idx.tolist(), values.tolist()))


def _percentiles_ms(latencies_s: list[float], qs: tuple[float, ...]) -> list[float]:
    t = torch.tensor(latencies_s, dtype=torch.float64) * 1e3
    return torch.quantile(t, torch.tensor(qs, dtype=torch.float64)).tolist()


def evaluate_model(
    model_path: str | Path,
    validation_dir: str | Path,
    *,
    k: int = 10,
    bootstrap_samples: int = 1000,
    warmup: int = 10,
    seed: int = 0,
) -> dict[str, Any]:
    """Quality and latency of a model on the validation set, as a JSON-ready dict.

    Quality metrics use one batched score matrix; latency is measured separately, one query at a
    time through Retriever.rank (encode text + score the gallery + top-k), after ``warmup``
    untimed queries. recall is capped recall (hits / min(k, #relevant), relevant = grade >= 1).
    ``latencies_ms`` lists every per-query latency (for SLO compliance).
    """
    total = stopwatch()
    model_path = Path(model_path)
    if not model_path.is_file():
        raise FileNotFoundError(f"model file not found: {model_path}")
    vs = load_validation(validation_dir)
    retriever = Retriever(model_path, vs.images)
    scores = retriever.scores(vs.texts)
    per_query = ndcg_at_k(scores, vs.relevance, k=k, per_query=True)
    ndcg = float(per_query.mean())
    ci = bootstrap_ci(per_query, n=bootstrap_samples, seed=seed) if bootstrap_samples > 0 else (ndcg, ndcg)

    texts = vs.texts
    for text in texts[:warmup]:
        retriever.rank(text, k)
    latencies = []
    lap = stopwatch()
    for text in texts:
        lap.restart()
        retriever.rank(text, k)
        latencies.append(lap.elapsed())
    p50, p95, p99 = _percentiles_ms(latencies, (0.5, 0.95, 0.99))
    meta = retriever.model.metadata
    r = lambda x: round(float(x), 6)  # noqa: E731
    return {
        f"ndcg_at_{k}": r(ndcg),
        f"ndcg_at_{k}_ci95": [r(ci[0]), r(ci[1])],
        f"recall_at_{k}": r(recall_at_k(scores, vs.relevance, k=k, capped=True)),
        "mrr": r(mrr(scores, vs.relevance)),
        "latency_p50_ms": round(p50, 4),
        "latency_p95_ms": round(p95, 4),
        "latency_p99_ms": round(p99, 4),
        "num_queries": len(texts),
        "num_gallery_items": retriever.num_items,
        "ndcg_gain": "exponential",
        "bootstrap_samples": bootstrap_samples,
        "model_path": str(model_path),
        "model_sha256": sha256_file(model_path),
        "model_variant": meta.get("variant"),
        "validation_set": str(validation_dir),
        "dataset_version": vs.info.get("version"),
        "dataset_seed": vs.info.get("seed"),
        "latencies_ms": [round(x * 1e3, 4) for x in latencies],
        "evaluated_in_s": round(total.elapsed(), 3),
    }
