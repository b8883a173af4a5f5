"""Prompt tokens per meeting stay flat as the run grows: meeting 50 against meeting 2.

Meetings are labelled by the number their ``meeting_started`` record gives them, read from every
journal segment, archived ones included (retention gzips the oldest away during a long run).
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
    number: dict[str, int] = {}  # meeting id -> its number in the run, from every segment, archived too
    by_number: dict[int, int] = {}  # meeting number -> prompt tokens
    for r in j.records(kinds={"meeting_started", "meeting_completed"}, include_archived=True):
        if r.kind == "meeting_started":
            number[r.data["meeting_id"]] = int(r.data["number"])
        else:
            tokens = sum(s["usage"]["input_tokens"] for s in r.data["speeches"])
            by_number[number[r.data["meeting_id"]]] = tokens
    archived = len(j.archived_segments())
    j.close()
    last = max(by_number)
    m2, mlast = by_number[2], by_number[last]
    change = (mlast - m2) / m2
    print(
        f"{len(by_number)} meetings in {time.perf_counter() - t0:.1f} s (offline provider, ManualClock; "
        f"{archived} journal segments archived by retention, read back)"
    )
    for i in (1, 2, 10, 25, last):
        if i in by_number:
            print(f"  meeting {i:>2}: {by_number[i]:>6} prompt tokens")
    later = {i: t for i, t in by_number.items() if i >= 2}  # meeting 1 has no state or history yet
    lo, hi = min(later, key=later.__getitem__), max(later, key=later.__getitem__)
    print(
        f"  meetings 2-{last}: lowest {later[lo]} (meeting {lo}), highest {later[hi]} (meeting {hi}), "
        f"{(later[hi] - later[lo]) / later[lo] * 100:.1f} % apart"
    )
    verdict = "OK" if abs(change) <= 0.10 else "OVER"
    print(f"meeting {last} vs meeting 2: {change * 100:+.1f} %   (target within ±10 %: {verdict})")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
