"""The cvagents adapter for the BM25 model: the one place cvagents loads and queries it.

The contract (``cvagents/models/adapter.py``): a factory ``load(artifact_path, validation_set)``
returns an object whose ``query(texts, k)`` gives, for each query text, the ids of the top-k
documents of the validation set's corpus, best first; ``close()`` is optional. Submit it with
``--adapter examples.bm25.adapter:load``. Nothing here imports cvagents: the contract is just
these two methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .model import BM25Model, read_corpus, read_params

CORPUS = "corpus.jsonl"


class BM25Adapter:
    def __init__(self, model: BM25Model):
        self.model = model

    def query(self, texts: Sequence[str], k: int) -> list[list[str]]:
        return [self.model.search(text, k) for text in texts]

    def close(self) -> None:
        """Nothing to release: the index lives in memory only."""


def load(artifact_path: str, validation_set: str) -> BM25Adapter:
    """Build the index from ``validation_set``'s corpus with the artifact's parameters."""
    params = read_params(artifact_path)
    return BM25Adapter(BM25Model(params, *read_corpus(Path(validation_set) / CORPUS)))
