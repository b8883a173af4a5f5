#!/usr/bin/env python3
"""Evaluate a retrieval model on the validation set and print the metrics as one JSON object.

    python research/evaluate_model.py --model research/v1_production.pth \
        --validation-set data/validation_set [--adapter package.module:factory] [--bootstrap 1000]

The model is loaded and queried through its adapter (default: the demo dual encoder's).

Without arguments it evaluates v1_production.pth next to this script on ../data/validation_set
(the workspace layout). Exit status 1, with the reason on stderr, if a file is missing or the
model cannot be evaluated. Needs the cvagents package (installed in the environment).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=HERE / "v1_production.pth", help="model checkpoint (.pth)")
    ap.add_argument(
        "--validation-set",
        type=Path,
        default=HERE.parent / "data" / "validation_set",
        help="folder with dataset_info.json, queries.json, qrels.json and the corpus the model searches",
    )
    ap.add_argument(
        "--adapter",
        help="the model adapter's factory, package.module:factory (default: the demo dual encoder's)",
    )
    ap.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the NDCG CI (0: none)")
    ap.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    ap.add_argument("--latencies", action="store_true", help="include every per-query latency in the output")
    args = ap.parse_args(argv)

    if not args.model.exists():
        print(f"error: model file not found: {args.model}", file=sys.stderr)
        return 1
    if not (args.validation_set / "dataset_info.json").is_file():
        print(f"error: validation set not found: {args.validation_set} (no dataset_info.json)", file=sys.stderr)
        return 1
    try:
        from cvagents.errors import CVAgentsError
        from cvagents.models.adapter import DEFAULT_ADAPTER
        from cvagents.models.evaluate import evaluate_model
    except ImportError as e:
        print(f"error: cannot import cvagents ({e}); install the package in this Python environment", file=sys.stderr)
        return 1
    try:
        metrics = evaluate_model(
            args.model,
            args.validation_set,
            adapter=args.adapter or DEFAULT_ADAPTER,
            bootstrap_samples=args.bootstrap,
            seed=args.seed,
        )
    except (OSError, ValueError, RuntimeError, KeyError, CVAgentsError) as e:
        print(f"error: evaluation failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    if not args.latencies:
        metrics.pop("latencies_ms", None)
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
