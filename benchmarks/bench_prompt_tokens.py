"""Prompt tokens per meeting stay flat as the run grows: meeting 50 against meeting 2.

The offline provider counts tokens as characters / 4 of exactly the prompt a real provider
would be sent; agents see summaries of earlier meetings, never whole transcripts. The run uses
the ManualClock (the accelerated clock taken to its limit: steps take no simulated time).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cvagents.clock import ManualClock  # noqa: E402
from cvagents.config import Settings  # noqa: E402
from cvagents.durability.journal import Journal  # noqa: E402
from cvagents.planning.team import build_teams  # noqa: E402
from cvagents.run.coordinator import Coordinator, RunOptions  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--meetings", type=int, default=50)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_tokens_"))
    settings = Settings(ROOT)
    t0 = time.perf_counter()
    c = Coordinator(
        settings,
        tmp / "ws",
        RunOptions(meetings=args.meetings, console=False),
        build_teams(settings),
        clock=ManualClock(),
    )
    try:
        c.run()
    finally:
        c.close()
    j = Journal.open(c.session_dir / "trajectories", read_only=True)
    per_meeting: dict[str, int] = {}
    order: list[str] = []
    for r in j.records(kinds={"meeting_completed"}):
        tokens = sum(s["usage"]["input_tokens"] for s in r.data["speeches"])
        per_meeting[r.data["meeting_id"]] = tokens
        order.append(r.data["meeting_id"])
    j.close()
    m2, mlast = per_meeting[order[1]], per_meeting[order[-1]]
    change = (mlast - m2) / m2
    print(f"{len(order)} meetings in {time.perf_counter() - t0:.1f} s (offline provider, ManualClock)")
    for i in (1, 2, 10, 25, len(order)):
        if i <= len(order):
            print(f"  meeting {i:>2}: {per_meeting[order[i - 1]]:>6} prompt tokens")
    print(
        f"meeting {len(order)} vs meeting 2: {change * 100:+.1f} %   (target within ±10 %: {'OK' if abs(change) <= 0.10 else 'OVER'})"
    )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
