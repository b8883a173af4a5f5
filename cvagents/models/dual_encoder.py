"""Dual encoder: a small CNN for images and an embedding-bag MLP for text, scored by cosine.

A checkpoint is a plain dict (tensors, str, int, float, list, dict) so that it loads with
``torch.load(path, weights_only=True)``: no pickled classes, nothing executed on load.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cvagents.durability.atomic import atomic_write_bytes
from cvagents.errors import CVAgentsError
from cvagents.models.data import ALIASES

FORMAT = "cvagents.dual_encoder/1"
DEFAULT_CONFIG: dict[str, Any] = {
    "image_size": 24,
    "channels": [16, 32, 64],
    "embed_dim": 64,
    "word_dim": 64,
    "text_hidden": 128,
}


class CheckpointError(CVAgentsError, ValueError):
    """A file is not a loadable dual-encoder checkpoint (names the file and what is wrong)."""


class DualEncoder(nn.Module):
    def __init__(
        self,
        vocab: list[str],
        config: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        aliases: dict[str, str] | None = None,
    ):
        super().__init__()
        self.config = {**DEFAULT_CONFIG, **(config or {})}
        self.vocab = list(vocab)
        self.aliases = dict(ALIASES if aliases is None else aliases)
        self.metadata = dict(metadata or {})
        self._index = {w: i for i, w in enumerate(self.vocab)}
        c1, c2, c3 = self.config["channels"]
        side = self.config["image_size"] // 8
        # Stride-2 stem (cheap on CPU), then flatten rather than global pooling: position is one
        # of the attributes, so the embedding must keep where things are.
        self.image_encoder = nn.Sequential(
            nn.Conv2d(3, c1, 3, stride=2, padding=1),
            nn.BatchNorm2d(c1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.BatchNorm2d(c2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1),
            nn.BatchNorm2d(c3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(c3 * side * side, self.config["embed_dim"]),
        )
        self.word_embedding = nn.EmbeddingBag(len(self.vocab), self.config["word_dim"], mode="mean", padding_idx=0)
        self.text_mlp = nn.Sequential(
            nn.Linear(self.config["word_dim"], self.config["text_hidden"]),
            nn.ReLU(),
            nn.Linear(self.config["text_hidden"], self.config["embed_dim"]),
        )
        self.logit_scale = nn.Parameter(torch.tensor(2.3))  # exp(2.3) ~ 10, learned

    # ------------------------------------------------------------------ text
    def token_ids(self, text: str) -> list[int]:
        """Known words only: unknown words (articles, 'photo', ...) carry no attribute."""
        ids = []
        for w in text.lower().replace("-", " ").split():
            w = "".join(ch for ch in w if ch.isalpha())
            w = self.aliases.get(w, w)
            i = self._index.get(w)
            if i is None and w.endswith("s"):
                i = self._index.get(w[:-1])
            if i:  # 0 is padding
                ids.append(i)
        return ids

    def encode_token_batch(self, tokens: torch.Tensor) -> torch.Tensor:
        """[B, L] token ids (0 = padding) -> unit vectors [B, D]."""
        return F.normalize(self.text_mlp(self.word_embedding(tokens)), dim=-1)

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        ids = [self.token_ids(t) for t in texts]
        flat = torch.tensor([i for row in ids for i in row], dtype=torch.long)
        offsets = torch.tensor([0] + [len(r) for r in ids[:-1]], dtype=torch.long).cumsum(0)
        return F.normalize(self.text_mlp(self.word_embedding(flat, offsets)), dim=-1)

    # ----------------------------------------------------------------- image
    def encode_images(self, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """float [N, 3, H, W] in [0, 1] (or uint8) -> unit vectors [N, D]."""
        if images.dtype == torch.uint8:
            images = images.float() / 255.0
        images = (images - 0.5).contiguous(memory_format=torch.channels_last)  # faster convs on CPU
        out = [self.image_encoder(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
        return F.normalize(torch.cat(out), dim=-1)

    def weights_sha256(self) -> str:
        """Hash of the parameters only: stable across saves, unlike the file (which has a timestamp)."""
        h = hashlib.sha256()
        for name, t in sorted(self.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().contiguous().cpu().numpy().tobytes())
        return h.hexdigest()


def _plain(x: Any) -> Any:
    """Metadata as plain built-in types, which weights_only loading accepts (a TorchVersion or a
    Path would make the file unloadable)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if x is None or type(x) in (bool, int, float, str):
        return x
    if isinstance(x, int):
        return int(x)
    if isinstance(x, float):
        return float(x)
    return str(x)


def save_checkpoint(model: DualEncoder, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write atomically (readers never see half a file); metadata is merged into model.metadata."""
    path = Path(path)
    meta = _plain({**model.metadata, **(metadata or {}), "weights_sha256": model.weights_sha256()})
    ckpt = {
        "format": FORMAT,
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "config": _plain(model.config),
        "vocab": [str(w) for w in model.vocab],
        "aliases": _plain(model.aliases),
        "metadata": meta,
    }
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    atomic_write_bytes(path, buf.getvalue())
    model.metadata = meta
    return path


def load_checkpoint(path: str | Path) -> DualEncoder:
    """Load a checkpoint safely (weights_only) into an eval-mode DualEncoder."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        got = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path}: expected a {FORMAT} checkpoint, got {got!r}")
    missing = [k for k in ("state_dict", "config", "vocab", "metadata") if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)}")
    model = DualEncoder(ckpt["vocab"], ckpt["config"], ckpt["metadata"], ckpt.get("aliases"))
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit the architecture: {e}") from e
    return model.eval()
