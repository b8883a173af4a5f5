"""What the model adapter and the traffic replay cost on top of the model: a replay of 10,000
requests through the demo adapter against the same 10,000 queries sent straight to the model
(``Retriever.rank``) in a plain loop.

    .venv/bin/python benchmarks/bench_adapter_overhead.py [--requests 10000] [--workspace DIR]

With --workspace its trained research/v1_production.pth and data/validation_set are used;
without, an untrained dual encoder of the same architecture (the same arithmetic per query, no
training needed) over a freshly generated validation set. The replay routes every request to
the candidate (all traffic, no production), so both sides answer the same 10,000 texts. The
machine is shared, so the two sides are interleaved: the requests go in chunks of 500, each
chunk answered by a direct loop and by a replay in turn (which goes first alternates), and each
side's time is summed over the chunks; the best of 3 such rounds is compared. One torch thread
(as training runs), so that other load disturbs both sides less.
Target: replay / direct <= 1.1. Exit status 1 when over it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import torch  # noqa: E402

from cvagents.models import Retriever, data  # noqa: E402
from cvagents.models.adapter import DEFAULT_ADAPTER, close_adapter, open_adapter  # noqa: E402
from cvagents.models.dual_encoder import DualEncoder, save_checkpoint  # noqa: E402
from cvagents.rollout import traffic  # noqa: E402

TARGET = 1.1
CHUNK = 500


def untrained(folder: Path) -> tuple[Path, Path]:
    vdir = folder / "data" / "validation_set"
    data.write_validation(data.generate_validation(seed=0), vdir)
    torch.manual_seed(0)
    model = save_checkpoint(DualEncoder(data.vocabulary(), metadata={"variant": "untrained"}), folder / "model.pth")
    return model, vdir


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--workspace", type=Path, help="a workspace with a trained model (default: an untrained one)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="bench_adapter_") as tmp:
        if args.workspace:
            model, vdir = args.workspace / "research" / "v1_production.pth", args.workspace / "data" / "validation_set"
        else:
            model, vdir = untrained(Path(tmp))
        texts = data.load_validation(vdir).texts
        stream = traffic.request_stream(texts, args.requests, seed=0)
        retriever = Retriever(model, vdir)
        adapter = open_adapter(DEFAULT_ADAPTER, model, vdir)

        def direct(chunk: list[str]) -> None:
            for text in chunk:
                retriever.rank(text, 10)

        def replay(chunk: list[str]) -> None:
            res = traffic.replay(
                adapter, None, chunk, weight=1.0, requests=len(chunk), slo_ms=50.0, p0_error_rate=0.01, warmup=0
            )
            assert res["errors"] == 0 and res["candidate_requests"] == len(chunk), res["incidents"]

        for text in texts[:50]:  # warm both paths up
            retriever.rank(text, 10)
            adapter.query([text], 10)
        chunks = [stream[i : i + CHUNK] for i in range(0, len(stream), CHUNK)]
        best = {"direct": float("inf"), "replay": float("inf")}
        for _ in range(3):
            spent = {"direct": 0.0, "replay": 0.0}
            for i, chunk in enumerate(chunks):
                sides = [("direct", direct), ("replay", replay)]
                for name, fn in sides if i % 2 == 0 else sides[::-1]:
                    t = time.perf_counter()
                    fn(chunk)
                    spent[name] += time.perf_counter() - t
            best = {k: min(best[k], spent[k]) for k in best}
        close_adapter(adapter)
    ratio = best["replay"] / best["direct"]
    n = args.requests
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, model {model.name}")
    print(
        f"direct Retriever.rank loop, {n:,} queries: {best['direct']:.3f} s ({best['direct'] / n * 1e6:.0f} us/query)"
    )
    print(
        f"traffic replay via the demo adapter, {n:,} requests: {best['replay']:.3f} s ({best['replay'] / n * 1e6:.0f} us/request)"
    )
    verdict = "PASS" if ratio <= TARGET else "OVER"
    print(f"adapter + replay overhead: ratio {ratio:.3f} vs target {TARGET}: {verdict}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
