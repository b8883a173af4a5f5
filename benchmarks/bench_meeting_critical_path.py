"""Meeting wall time against its critical path.

Every agent on its real provider (official SDKs) against loopback servers that answer each call
after 200 ms. A meeting has two sequential LLM rounds (contributions in parallel, then the
moderator's synthesis), so its critical path is 2 × 200 ms; the target is at most
1.1 × the critical path. A round-robin meeting would make six sequential calls.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from agent_backend import FRESH_STATE as STATE  # noqa: E402
from agent_backend import AgentBackend, start_servers  # noqa: E402

from cvagents.config import Settings  # noqa: E402
from cvagents.llm.cost import CostLedger  # noqa: E402
from cvagents.planning.meeting import Meeting  # noqa: E402
from cvagents.planning.team import build_teams  # noqa: E402
from cvagents.runner import provider_factory  # noqa: E402

DELAY = 0.200


def main() -> None:
    backend = AgentBackend(malformed_first_synthesis=False, delay_s=DELAY)
    servers = start_servers(backend)
    keys = {"ANTHROPIC_API_KEY": "bench-key", "OPENAI_API_KEY": "bench-key", "GOOGLE_API_KEY": "bench-key"}
    import os

    os.environ["ANTHROPIC_BASE_URL"] = servers["anthropic"].origin
    os.environ["OPENAI_BASE_URL"] = servers["openai"].base_url
    os.environ["GOOGLE_GEMINI_BASE_URL"] = servers["gemini"].origin
    settings = Settings(ROOT)
    ledger = CostLedger(None)
    teams = build_teams(settings, provider_factory(settings, "configured", strict=True, ledger=ledger, keys=keys))
    meeting = Meeting(teams)
    rounds = 2
    critical = rounds * DELAY
    walls = []
    for i in range(6):
        t0 = time.perf_counter()
        out = meeting.hold(f"meeting_bench_{i}", 1, "t", STATE, [])
        walls.append(time.perf_counter() - t0)
        assert out.status == "completed", out.notes
    walls = walls[1:]  # the first opens the connections
    med = statistics.median(walls)
    bound = 1.1 * critical
    print(
        f"server delay per call: {DELAY * 1000:.0f} ms; sequential LLM rounds: {rounds}; critical path {critical * 1000:.0f} ms"
    )
    print(f"meeting wall time: median {med * 1000:.0f} ms, max {max(walls) * 1000:.0f} ms over {len(walls)} meetings")
    print(
        f"ratio wall / critical path: {med / critical:.2f}   (target: wall <= {bound * 1000:.0f} ms = 1.1 x critical: {'OK' if med <= bound else 'OVER'})"
    )
    print(f"a round-robin meeting would take >= {6 * DELAY * 1000:.0f} ms ({6 * DELAY / med:.1f}x this one)")
    for s in servers.values():
        s.stop()


if __name__ == "__main__":
    main()
