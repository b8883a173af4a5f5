"""A validation set, in the usual shape of an IR test collection, read and checked.

A validation-set folder holds:

- ``queries.json`` — a list of queries, ``[{"id": "q0001", "text": "..."}, ...]`` (other keys
  are kept but not read);
- ``qrels.json`` — graded relevance judgments, ``{"q0001": {"doc_17": 3, "doc_4": 1}, ...}``:
  query id → document id → grade (an integer ≥ 0; 0 = judged not relevant; an unjudged
  document counts as 0);
- ``dataset_info.json`` — a JSON object describing the set (``name``, ``version``, ...), written
  last: its presence marks the folder complete;
- the corpus the model searches, in whatever form its adapter reads: ``corpus.jsonl`` (one
  ``{"id": ..., "text": ...}`` per line, as in BEIR) for a text model, ``gallery.pt`` for the
  demo's images. The adapter returns the ids of these documents.

Anything else is a ``CollectionError`` naming the file and what is wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvagents.errors import CVAgentsError

INFO, QUERIES, QRELS = "dataset_info.json", "queries.json", "qrels.json"


class CollectionError(CVAgentsError, ValueError):
    """A validation set that is missing a file or holds something of the wrong shape."""


@dataclass(frozen=True)
class Collection:
    """Queries and their judgments (the corpus stays with the adapter)."""

    folder: Path
    info: dict[str, Any]
    queries: list[dict[str, Any]]
    qrels: dict[str, dict[str, int]]

    @property
    def ids(self) -> list[str]:
        return [q["id"] for q in self.queries]

    @property
    def texts(self) -> list[str]:
        return [q["text"] for q in self.queries]


def _read(path: Path) -> Any:
    if not path.is_file():
        raise CollectionError(f"{path}: not found (a validation set needs {INFO}, {QUERIES} and {QRELS})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise CollectionError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except ValueError as e:
        raise CollectionError(f"{path}: not valid JSON ({e})") from None


def load(folder: str | Path) -> Collection:
    """Read and check a validation-set folder."""
    folder = Path(folder)
    info = _read(folder / INFO)
    if not isinstance(info, dict):
        raise CollectionError(f"{folder / INFO}: expected a JSON object, got {type(info).__name__}")
    queries = _read(folder / QUERIES)
    where = folder / QUERIES
    if not isinstance(queries, list) or not queries:
        raise CollectionError(f'{where}: expected a non-empty list of {{"id", "text"}} objects')
    seen: set[str] = set()
    for i, q in enumerate(queries):
        if not isinstance(q, dict) or not isinstance(q.get("id"), str) or not isinstance(q.get("text"), str):
            raise CollectionError(f'{where}: [{i}]: expected {{"id": str, "text": str}}, got {str(q)[:80]}')
        if q["id"] in seen:
            raise CollectionError(f"{where}: [{i}]: query id {q['id']!r} given twice")
        seen.add(q["id"])
    qrels = _read(folder / QRELS)
    where = folder / QRELS
    if not isinstance(qrels, dict):
        raise CollectionError(f"{where}: expected an object of query id -> {{document id: grade}}")
    for qid, judged in qrels.items():
        if not isinstance(judged, dict):
            raise CollectionError(f"{where}: {qid}: expected {{document id: grade}}, got {type(judged).__name__}")
        for doc, grade in judged.items():
            if isinstance(grade, bool) or not isinstance(grade, int) or grade < 0:
                raise CollectionError(f"{where}: {qid}.{doc}: expected a whole-number grade >= 0, got {grade!r}")
    unknown = [qid for qid in qrels if qid not in seen]
    if unknown:
        raise CollectionError(f"{where}: judgments for queries not in {QUERIES}: {', '.join(unknown[:5])}")
    if not any(any(g > 0 for g in j.values()) for j in qrels.values()):
        raise CollectionError(f"{where}: no document is judged relevant (grade > 0) for any query")
    return Collection(folder, info, queries, {q: dict(j) for q, j in qrels.items()})
