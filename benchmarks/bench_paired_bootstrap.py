"""Speed of the paired bootstrap behind the champion-vs-challenger gate: the 95 % CI of the mean
per-query NDCG@10 difference between two models, 1,000 resamples, on 10,000 queries.

    .venv/bin/python benchmarks/bench_paired_bootstrap.py [--queries 10000] [--resamples 1000]

The two models' ranked lists are simulated (a champion and a challenger that swaps some of its
top results) and scored through ``cvagents.models.ranking`` as an evaluation scores them; the
figure is the bootstrap alone (best of 5), with the scoring shown beside it. Target: <= 1 s.
Exit status 1 when over it.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from cvagents.models import ranking  # noqa: E402

TARGET_S = 1.0


def simulated(queries: int, docs: int = 1000, k: int = 10, seed: int = 0):
    """Graded judgments per query, a champion's ranked lists and a slightly worse challenger's."""
    rng = random.Random(seed)
    qrels, champ, chall = [], [], []
    for _ in range(queries):
        judged = {f"d{rng.randrange(docs)}": rng.randint(1, 3) for _ in range(rng.randint(1, 15))}
        pool = list(judged) + [f"d{rng.randrange(docs)}" for _ in range(k)]
        rng.shuffle(pool)
        a = sorted(pool, key=lambda d: -judged.get(d, 0) + rng.random() * 2)[:k]
        b = list(a)
        if rng.random() < 0.5:
            i, j = rng.sample(range(k), 2)
            b[i], b[j] = b[j], b[i]
        qrels.append(judged)
        champ.append(a)
        chall.append(b)
    return qrels, champ, chall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--resamples", type=int, default=1000)
    args = ap.parse_args()
    qrels, champ, chall = simulated(args.queries)
    t = time.perf_counter()
    a = ranking.per_query(chall, qrels)["ndcg"]
    b = ranking.per_query(champ, qrels)["ndcg"]
    scoring = time.perf_counter() - t
    best, ci = float("inf"), (0.0, 0.0)
    for seed in range(5):
        t = time.perf_counter()
        ci = ranking.paired_bootstrap_ci(a, b, n=args.resamples, seed=seed)
        best = min(best, time.perf_counter() - t)
    print(
        f"scoring NDCG@10 of two models' ranked lists, {args.queries:,} queries: {scoring:.3f} s"
        f"\nmean difference {float((a - b).mean()):+.4f}, 95% CI [{ci[0]:+.4f}, {ci[1]:+.4f}]"
    )
    verdict = "PASS" if best <= TARGET_S else "OVER"
    print(
        f"paired bootstrap, {args.resamples:,} resamples of {args.queries:,} queries: {best:.3f} s (best of 5)"
        f" vs target {TARGET_S:.1f} s: {verdict}"
    )
    return 0 if best <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
