"""One planning meeting and one executive heartbeat of an offline run, every agent behind the
run's own ``ManagedProvider`` (as ``cvagents run --provider offline`` builds them), then a
clean stop (a helper, not a test module; it imports nothing a test framework brings).

    python tests/short_run.py WORKSPACE    # prints the run's result as JSON
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cvagents.clock import ManualClock
from cvagents.config import AgentConfig, Settings
from cvagents.llm.base import Provider
from cvagents.llm.cost import CostLedger
from cvagents.llm.factory import ManagedProvider, build_provider
from cvagents.offline.provider import OfflineProvider
from cvagents.planning.team import build_teams
from cvagents.run.coordinator import Coordinator, RunOptions

ROOT = Path(__file__).resolve().parents[1]


def short_run(workspace: Path, offline: Provider | None = None) -> dict:
    """1 meeting + 1 heartbeat on the manual clock; the result of ``Coordinator.run``.
    ``offline``: what stands in for the offline provider behind every agent (a scripted fake)."""
    settings = Settings(ROOT)
    m = settings.meeting
    clock = ManualClock()
    ledger = CostLedger(m.budgets)
    stand_in = offline or OfflineProvider()

    def make(name: str, cfg: AgentConfig) -> ManagedProvider:
        return build_provider(
            name, cfg, m.defaults, mode="offline", ledger=ledger, pricing=m.pricing, offline_provider=stand_in
        )

    teams = build_teams(settings, make)
    c = Coordinator(settings, workspace, RunOptions(meetings=1, console=False), teams, clock=clock, ledger=ledger)

    def stop_after_first_heartbeat(step: str, rec: dict) -> None:
        if step == "heartbeat":
            clock.stop()

    c.on_step = stop_after_first_heartbeat
    try:
        return c.run()
    finally:
        c.close()


if __name__ == "__main__":
    print(json.dumps(short_run(Path(sys.argv[1]))))
