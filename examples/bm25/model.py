"""The model: BM25 over a text corpus, built with rank-bm25's ``BM25Okapi``.

It knows nothing of cvagents. Its artifact is its parameters, a small JSON file (no pickle):

    {"kind": "bm25", "k1": 1.2, "b": 0.75, "tokenizer": "lower-alnum"}

The index itself is built from the corpus when the model is loaded: for a few hundred short
documents that takes milliseconds, so there is nothing else worth storing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rank_bm25 import BM25Okapi

KIND = "bm25"
TOKENIZERS: dict[str, Callable[[str], list[str]]] = {
    "lower-alnum": lambda text: re.findall(r"[a-z0-9]+", text.lower()),
}


@dataclass(frozen=True)
class Params:
    k1: float = 1.2  # term-frequency saturation
    b: float = 0.75  # document-length normalisation
    tokenizer: str = "lower-alnum"

    def to_json(self) -> dict:
        return {"kind": KIND, "k1": self.k1, "b": self.b, "tokenizer": self.tokenizer}


def read_params(path: str | Path) -> Params:
    """The parameters in the artifact ``path``; a ValueError naming the file if they are wrong."""
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable JSON file ({e})") from None
    return params_from(d, str(path))


def params_from(d: object, where: str) -> Params:
    """Checked parameters from the artifact's JSON ``d`` (``where`` names it in errors)."""
    if not isinstance(d, dict) or d.get("kind") != KIND:
        raise ValueError(f'{where}: not a BM25 artifact (expected {{"kind": "{KIND}", ...}})')
    unknown = set(d) - {"kind", "k1", "b", "tokenizer"}
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)} (expected kind, k1, b, tokenizer)")
    p = Params(**{f: d[f] for f in ("k1", "b", "tokenizer") if f in d})
    numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (p.k1, p.b))
    if not numbers or p.k1 < 0 or not 0 <= p.b <= 1:
        raise ValueError(f"{where}: expected k1 >= 0 and 0 <= b <= 1, got k1={p.k1!r} b={p.b!r}")
    if not isinstance(p.tokenizer, str) or p.tokenizer not in TOKENIZERS:
        raise ValueError(f"{where}: unknown tokenizer {p.tokenizer!r} (known: {', '.join(TOKENIZERS)})")
    return p


def read_corpus(path: str | Path) -> tuple[list[str], list[str]]:
    """Document ids and texts from a ``corpus.jsonl`` (one ``{"id", "text"}`` per line)."""
    if not Path(path).is_file():
        raise ValueError(f"{path}: not found (the corpus the model searches)")
    ids, texts = [], []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                raise ValueError(f"{path}: line {n}: not JSON") from None
            if not isinstance(doc, dict) or not isinstance(doc.get("id"), str) or not isinstance(doc.get("text"), str):
                raise ValueError(f'{path}: line {n}: expected {{"id": str, "text": str}}')
            ids.append(doc["id"])
            texts.append(doc["text"])
    if not ids:
        raise ValueError(f"{path}: no documents")
    return ids, texts


class BM25Model:
    """Top-k search over a fixed corpus."""

    def __init__(self, params: Params, ids: list[str], texts: list[str]):
        self.ids = ids
        self.tokenize = TOKENIZERS[params.tokenizer]
        self.index = BM25Okapi([self.tokenize(t) for t in texts], k1=params.k1, b=params.b)

    def search(self, text: str, k: int) -> list[str]:
        """The ids of the ``k`` best documents for ``text``, best first (ties: corpus order)."""
        scores = self.index.get_scores(self.tokenize(text))
        best = np.argsort(-scores, kind="stable")[:k]
        return [self.ids[i] for i in best]
