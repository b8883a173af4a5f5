"""The broken twin: the same BM25 model with a fault, to show that the gates stop it at shadow.

Its artifact names the fault and the model it spoils:

    {"kind": "bm25-broken", "fault": "random", "model": {"kind": "bm25", "k1": 1.2, ...}}
    {"kind": "bm25-broken", "fault": "slow", "delay_ms": 60, "model": {...}}

- ``random`` ranks the corpus in an order seeded by the query text: it answers fast and in the
  right shape, but its NDCG@10 is near 0 (the quality gate fails);
- ``slow`` answers as BM25 does but sleeps ``delay_ms`` per query (past the 50 ms latency gate).

Submit it with ``--adapter examples.bm25.broken:load``.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from pathlib import Path

from .adapter import CORPUS, BM25Adapter
from .model import BM25Model, Params, params_from, read_corpus

BROKEN = "bm25-broken"
FAULTS = ("random", "slow")
SLOW_MS = 60.0


def artifact(fault: str, params: Params | None = None, delay_ms: float = SLOW_MS) -> dict:
    """The JSON of a broken twin of the model with ``params``."""
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r} (known: {', '.join(FAULTS)})")
    d = {"kind": BROKEN, "fault": fault, "model": (params or Params()).to_json()}
    return {**d, "delay_ms": delay_ms} if fault == "slow" else d


class BrokenAdapter(BM25Adapter):
    def __init__(self, model: BM25Model, fault: str, delay_ms: float):
        super().__init__(model)
        self.fault, self.delay_s = fault, delay_ms / 1000

    def query(self, texts: Sequence[str], k: int) -> list[list[str]]:
        if self.fault == "random":
            return [random.Random(text).sample(self.model.ids, min(k, len(self.model.ids))) for text in texts]
        out = []
        for text in texts:
            time.sleep(self.delay_s)
            out.extend(super().query([text], k))
        return out


def load(artifact_path: str, validation_set: str) -> BrokenAdapter:
    d = json.loads(Path(artifact_path).read_text(encoding="utf-8"))
    if not isinstance(d, dict) or d.get("kind") != BROKEN or d.get("fault") not in FAULTS:
        raise ValueError(f'{artifact_path}: not a broken BM25 twin (expected {{"kind": "{BROKEN}", "fault": ...}})')
    params = params_from(d.get("model"), f"{artifact_path}: model")
    model = BM25Model(params, *read_corpus(Path(validation_set) / CORPUS))
    return BrokenAdapter(model, d["fault"], float(d.get("delay_ms", SLOW_MS)))
