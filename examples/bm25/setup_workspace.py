"""Lay the BM25 example out in a cvagents workspace, as the guide's layout wants it:

    WS/data/validation_set/   the validation set (corpus.jsonl, queries.json, qrels.json, dataset_info.json)
    WS/research/bm25_v1.json        the model (its parameters)
    WS/research/bm25_random.json    its broken twin that ranks at random
    WS/research/bm25_slow.json      its broken twin that is too slow

    python -m examples.bm25.setup_workspace WS

A validation set of another name already in WS is left alone (an error), never overwritten.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import broken, make_validation_set
from .model import Params

VALIDATION_SET = Path("data") / "validation_set"
RESEARCH = Path("research")
GOOD, RANDOM, SLOW = "bm25_v1", "bm25_random", "bm25_slow"


def setup(ws: str | Path, seed: int = 0) -> dict[str, Path]:
    """Write the validation set and the three artifacts into ``ws``; their paths by name
    (``validation_set``, ``bm25_v1``, ``bm25_random``, ``bm25_slow``)."""
    ws = Path(ws)
    vdir = ws / VALIDATION_SET
    info = vdir / "dataset_info.json"
    if info.is_file() and json.loads(info.read_text(encoding="utf-8")).get("name") != make_validation_set.NAME:
        raise ValueError(f"{vdir}: holds another validation set; use a fresh workspace")
    make_validation_set.write(vdir, seed=seed)
    models = {GOOD: Params().to_json(), RANDOM: broken.artifact("random"), SLOW: broken.artifact("slow")}
    out = {"validation_set": vdir}
    for name, model in models.items():
        path = ws / RESEARCH / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(model, indent=1) + "\n", encoding="utf-8")
        out[name] = path
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Lay the BM25 example out in a cvagents workspace.")
    ap.add_argument("workspace")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    try:
        paths = setup(a.workspace, a.seed)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    for name, path in paths.items():
        print(f"{name}: {path}")
    ws = a.workspace
    print("\nthen:")
    print(f"  cvagents submit --workspace {ws} {Path(ws) / RESEARCH / GOOD}.json --adapter examples.bm25.adapter:load")
    print(f"  cvagents run --provider offline --workspace {ws}")


if __name__ == "__main__":
    main()
