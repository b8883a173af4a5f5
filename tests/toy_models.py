"""A toy model family for tests of the adapter machinery (evaluation, replay, gates, lifecycle),
so those tests need no training. Used as the adapter ``toy_models:load`` (tests/ is on sys.path,
and subprocesses get it through PYTHONPATH — see ``toy_env``).

The artifact is a JSON file ``{"kind": "toy", "quality": ..., "delay_ms": ..., "fail": ...}``:

- ``quality``: ``oracle`` ranks the judged documents by grade (then the rest by id), ``good``
  does the same but swaps each query's first two, ``reversed`` ranks the least relevant first,
  ``random`` a seeded shuffle;
- ``delay_ms``: sleep this long per query (a model past the latency gate);
- ``fail``: ``load`` (the factory raises), ``query`` (every query raises).

It ranks from the validation set's judgments, which a real model never sees: it is a test
double for the machinery around a model, not a model.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SPEC = "toy_models:load"


class ToyModelError(RuntimeError):
    pass


class ToyAdapter:
    def __init__(self, model: dict[str, Any], validation_set: Path):
        self.model = model
        queries = json.loads((validation_set / "queries.json").read_text())
        qrels = json.loads((validation_set / "qrels.json").read_text())
        docs = [json.loads(line)["id"] for line in (validation_set / "corpus.jsonl").read_text().splitlines() if line]
        self.qid = {q["text"]: q["id"] for q in queries}
        self.qrels, self.docs = qrels, docs
        self.closed = False

    def _rank(self, text: str, k: int) -> list[str]:
        judged = self.qrels.get(self.qid.get(text, ""), {})
        quality = self.model.get("quality", "oracle")
        if quality == "random":
            order = list(self.docs)
            random.Random(text).shuffle(order)
            return order[:k]
        order = sorted(self.docs, key=lambda d: (-judged.get(d, 0), d))
        if quality == "reversed":
            order.reverse()
        elif quality == "good" and len(order) > 1:
            order[0], order[1] = order[1], order[0]
        return order[:k]

    def query(self, texts, k: int) -> list[list[str]]:
        if self.model.get("fail") == "query":
            raise ToyModelError("toy model asked to fail every query")
        out = []
        for text in texts:
            if self.model.get("delay_ms"):
                time.sleep(self.model["delay_ms"] / 1000)
            out.append(self._rank(text, k))
        return out

    def close(self) -> None:
        self.closed = True


def load(artifact: str, validation_set: str) -> ToyAdapter:
    model = json.loads(Path(artifact).read_text())
    if model.get("kind") != "toy":
        raise ToyModelError(f"{artifact} is not a toy model")
    if model.get("fail") == "load":
        raise ToyModelError("toy model asked to fail on load")
    return ToyAdapter(model, Path(validation_set))


def write_toy(path: Path, quality: str = "oracle", delay_ms: float = 0, fail: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"kind": "toy", "quality": quality, "delay_ms": delay_ms, "fail": fail}))
    return path


def write_collection(folder: Path, queries: int = 60, docs: int = 120, seed: int = 0) -> Path:
    """A validation set in the documented format: each query has 1-4 judged documents (grades 1-3)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    doc_ids = [f"d{i:04d}" for i in range(docs)]
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"id": d, "text": f"document {d}"}) + "\n" for d in doc_ids)
    )
    qs = [{"id": f"q{i:03d}", "text": f"toy query number {i}"} for i in range(queries)]
    qrels = {q["id"]: {d: rng.randint(1, 3) for d in rng.sample(doc_ids, rng.randint(1, 4))} for q in qs}
    (folder / "queries.json").write_text(json.dumps(qs))
    (folder / "qrels.json").write_text(json.dumps(qrels))
    (folder / "dataset_info.json").write_text(json.dumps({"name": "toy", "version": "1", "seed": seed}))
    return folder


def toy_env() -> dict[str, str]:
    """The environment for a subprocess that must import ``toy_models``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p)
    return env
