"""The demo dual encoder as a model adapter (the default ``serving.adapter``), and its serving
path ``Retriever``: text-to-image search over the validation set's ``gallery.pt``.

Document ids are gallery indices as strings, the keys of the demo's ``qrels.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from cvagents.models.dual_encoder import DualEncoder, load_checkpoint


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

    def top(self, texts: Sequence[str], k: int = 10) -> torch.Tensor:
        """Gallery indices of the top k of each text [len(texts), min(k, N)], best first: one
        text encoding, one product and one top-k for the whole batch."""
        with torch.inference_mode():
            scores = self.model.encode_text(list(texts)) @ self._gallery_t
            return scores.topk(min(k, self.num_items), dim=1).indices

    def rank(self, query_text: str, k: int = 10) -> list[tuple[int, float]]:
        """Top-k (gallery index, score), best first."""
        with torch.inference_mode():
            s = (self.model.encode_text([query_text]) @ self._gallery_t)[0]
            values, idx = s.topk(min(k, self.num_items))
        return list(zip(idx.tolist(), values.tolist()))


class DemoAdapter:
    """``query(texts, k)``: the top-k gallery indices of each text, as strings."""

    def __init__(self, retriever: Retriever):
        self.retriever = retriever
        #: what evaluate_model adds to its record about the model
        self.info: dict[str, Any] = {
            "model_variant": retriever.model.metadata.get("variant"),
            "num_gallery_items": retriever.num_items,
        }

    def query(self, texts: Sequence[str], k: int) -> list[list[str]]:
        if not texts:
            return []
        # One torch thread: a query is a small product that one thread answers as fast as two,
        # and on a busy machine a second thread only makes the first wait for it (latency spikes
        # past the SLO). The caller's setting is put back.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return [[str(i) for i in row] for row in self.retriever.top(texts, k).tolist()]
        finally:
            torch.set_num_threads(threads)

    def close(self) -> None:
        pass


def load(artifact: str, validation_set: str) -> DemoAdapter:
    """The adapter factory: the checkpoint ``artifact`` over ``validation_set``/gallery.pt."""
    return DemoAdapter(Retriever(artifact, validation_set))
