"""Benchmark of the model side: training time, serving latency, evaluation time, NDCG speed.

    .venv/bin/python benchmarks/bench_model.py [--workspace DIR] [--retrain]

Without --workspace everything happens in a temporary folder. With it, an existing
research/v1_production.pth is reused (its recorded training time is shown) unless --retrain:
retraining gives the same weights but a new file (new sha256), which a deployment may pin.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import torch  # noqa: E402

from cvagents.models import create_artifacts, evaluate_model, load_checkpoint  # noqa: E402
from cvagents.models.metrics import ndcg_at_k  # noqa: E402


def mark(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def bench_training(ws: Path, retrain: bool) -> Path:
    model = ws / "research" / "v1_production.pth"
    if model.is_file() and not retrain:
        train = load_checkpoint(model).metadata.get("train", {})
        print(
            f"v1 training time:             {train.get('train_seconds', float('nan')):.2f} s "
            f"(recorded in the existing checkpoint; --retrain to measure)"
        )
        return model
    t = time.perf_counter()
    s = create_artifacts(ws, "v1", seed=0)
    total = time.perf_counter() - t
    print(
        f"v1 training time:             {s['train_seconds']:.2f} s train (incl. data), "
        f"{total:.2f} s create_artifacts total  [target < 30 s: {mark(total < 30)}]"
    )
    print(
        f"v1 validation NDCG@10:        {s['validation_ndcg_at_10']:.4f}  [gate >= 0.72: "
        f"{mark(s['validation_ndcg_at_10'] >= 0.72)}]"
    )
    return model


def bench_evaluation(model: Path, vdir: Path) -> None:
    t = time.perf_counter()
    m = evaluate_model(model, vdir, bootstrap_samples=1000)
    wall = time.perf_counter() - t
    print(
        f"per-query latency (n={m['num_queries']}, gallery {m['num_gallery_items']}): "
        f"P50 {m['latency_p50_ms']:.3f} ms, P95 {m['latency_p95_ms']:.3f} ms, P99 {m['latency_p99_ms']:.3f} ms"
        f"  [P95 <= 10 ms: {mark(m['latency_p95_ms'] <= 10)}]"
    )
    print(
        f"full evaluation + bootstrap:  {wall:.2f} s (1000 resamples; NDCG@10 {m['ndcg_at_10']:.4f} "
        f"CI95 [{m['ndcg_at_10_ci95'][0]:.4f}, {m['ndcg_at_10_ci95'][1]:.4f}])  [<= 10 s: {mark(wall <= 10)}]"
    )


def bench_ndcg(num_queries: int = 10_000, num_items: int = 100, k: int = 10) -> None:
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(num_queries, num_items, generator=g)
    rel = torch.randint(0, 4, (num_queries, num_items), generator=g)
    t_avg, ours = best_of(lambda: ndcg_at_k(scores, rel, k=k, gain="linear", per_query=True), 5)
    t_fast, _ = best_of(lambda: ndcg_at_k(scores, rel, k=k, gain="linear", ties="ignore"), 5)
    try:
        from sklearn.metrics import ndcg_score
    except ImportError:
        print("NDCG@10 torch vs sklearn:     sklearn not installed (pip install scikit-learn)")
        return
    y_true, y_score = rel.numpy(), scores.numpy()
    t_sk, theirs = best_of(lambda: ndcg_score(y_true, y_score, k=k), 2)
    diff_mean = abs(float(ours.mean()) - theirs)
    line = (
        f"NDCG@{k} {num_queries:,} x {num_items} (linear gain): torch {t_avg * 1e3:.1f} ms "
        f"(tie-averaged; {t_fast * 1e3:.1f} ms ties ignored), sklearn {t_sk * 1e3:.1f} ms, "
        f"speedup {t_sk / t_avg:.1f}x  [>= 10x: {mark(t_sk / t_avg >= 10)}]"
    )
    print(line)
    try:  # per-query comparison through sklearn's (private) per-sample function
        from sklearn.metrics._ranking import _ndcg_sample_scores

        per_q = torch.from_numpy(_ndcg_sample_scores(y_true, y_score, k=k))
        diff = float((ours - per_q).abs().max())
        print(
            f"max |torch - sklearn|:        {diff:.2e} per query, {diff_mean:.2e} mean  [<= 1e-6: {mark(diff <= 1e-6)}]"
        )
    except ImportError:
        print(f"max |torch - sklearn|:        {diff_mean:.2e} (mean)  [<= 1e-6: {mark(diff_mean <= 1e-6)}]")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workspace", type=Path, help="workspace folder (default: a temporary one)")
    ap.add_argument("--retrain", action="store_true", help="train even if the workspace has a model")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory(prefix="bench_model_") as tmp:
        ws = args.workspace or Path(tmp)
        model = bench_training(ws, args.retrain)
        bench_evaluation(model, ws / "data" / "validation_set")
    bench_ndcg()
    return 0


if __name__ == "__main__":
    sys.exit(main())
