"""How much of each request a provider's prompt cache can serve: over a run of several meetings
(and the heartbeats between them), the share of each agent's request that is an exact prefix of
the same agent's previous request, weighted by request size.

Providers cache a prompt's prefix (Anthropic up to a ``cache_control`` breakpoint, OpenAI and
Gemini automatically), in the order tools → system → messages; a request is rendered here in
that order, as characters. Every agent is on the offline provider, behind a recorder that sees
exactly the ``LLMRequest`` a real provider would be sent. Target: ≥ 85 % overall and for the
planning team's requests alone.

Two runs: ``steady``, meetings (and the first actions of each handoff) on one rollout state, as
the loopback-server measurement of issue 15 held them: what the order of a request's parts
decides; and ``full``, a coordinator run whose rollout moves, where the state itself (two thirds
of a planning prompt) changes from one meeting to the next, so no order can cache it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cvagents.clock import ManualClock  # noqa: E402
from cvagents.config import (  # noqa: E402
    AgentConfig,
    CoordinationConfig,  # noqa: E402
    Settings,
)
from cvagents.execution.executive import Executive  # noqa: E402
from cvagents.execution.tools import ToolContext, default_registry  # noqa: E402
from cvagents.llm.base import LLMRequest, LLMResult, Provider  # noqa: E402
from cvagents.planning.meeting import Meeting  # noqa: E402
from cvagents.planning.team import build_teams, offline_factory  # noqa: E402
from cvagents.run.coordinator import Coordinator, RunOptions  # noqa: E402
from cvagents.workspace import Workspace  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
from agent_backend import FRESH_STATE  # noqa: E402


def wire_text(req: LLMRequest) -> str:
    """The request in the order providers cache it: tools, system, then the messages."""
    parts = [json.dumps([[t.name, t.description, t.parameters] for t in req.tools], sort_keys=True), req.system]
    for m in req.messages:
        calls = json.dumps([[c.name, c.arguments] for c in m.tool_calls], sort_keys=True) if m.tool_calls else ""
        parts.append(f"{m.role}:{m.content}{calls}")
    return "\n".join(parts)


class Recorder(Provider):
    """Passes every request on, and keeps (team, agent, wire text) of each."""

    def __init__(self, inner: Provider, agent: str, team: str, seen: list[tuple[str, str, str]]):
        self.inner, self.agent, self.team, self.seen = inner, agent, team, seen
        self.name, self.model = inner.name, inner.model

    def complete(self, request: LLMRequest) -> LLMResult:
        self.seen.append((self.team, self.agent, wire_text(request)))
        return self.inner.complete(request)


def common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    step = 4096
    while i < n and a[i : i + step] == b[i : i + step]:  # whole blocks first, then characters
        i += step
    i = min(i, n)
    while i < n and a[i] == b[i]:
        i += 1
    return i


def shares(seen: list[tuple[str, str, str]]) -> dict[str, tuple[float, int]]:
    """(share, requests) overall and per team: sum of common prefixes / sum of request sizes, over
    every request that has an earlier one from the same agent."""
    last: dict[str, str] = {}
    hit: dict[str, int] = defaultdict(int)
    size: dict[str, int] = defaultdict(int)
    count: dict[str, int] = defaultdict(int)
    for team, agent, text in seen:
        prev = last.get(agent)
        last[agent] = text
        if prev is None:
            continue
        cp = common_prefix(prev, text)
        for key in ("overall", team):
            hit[key] += cp
            size[key] += len(text)
            count[key] += 1
    return {k: (hit[k] / size[k], count[k]) for k in size}


def steady(settings: Settings, factory, tmp: Path, meetings: int) -> None:
    """Meetings on one rollout state, each followed by its handoff's first three actions."""
    teams = build_teams(settings, factory)
    cfg = CoordinationConfig()
    ws = Workspace.from_config(tmp / "steady", cfg).create(ROOT)
    ex = Executive(teams.executive, default_registry(), lambda key: ToolContext(ws, cfg, action_key=key))
    meeting, earlier = Meeting(teams), []
    for n in range(1, meetings + 1):
        mid = f"meeting_{n:04d}"
        state = {**FRESH_STATE, "meeting_number": n}
        out = meeting.hold(mid, n, "t", state, earlier[-3:])
        earlier.append(f"{mid}: {len(out.handoff.actions) if out.handoff else 0} actions")
        for a in out.handoff.actions[:3] if out.handoff else []:
            ex.carry_out(a, mid, state)


def full(settings: Settings, factory, tmp: Path, meetings: int) -> None:
    c = Coordinator(
        settings,
        tmp / "ws",
        RunOptions(meetings=meetings, console=False),
        build_teams(settings, factory),
        clock=ManualClock(),
    )
    try:
        c.run()
    finally:
        c.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--meetings", type=int, default=6)
    ap.add_argument("--runs", default="steady,full", help="steady, full or both (comma-separated)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_cache_"))
    settings = Settings(ROOT)
    for run in args.runs.split(","):
        seen: list[tuple[str, str, str]] = []

        def factory(name: str, cfg: AgentConfig, seen=seen) -> Provider:
            return Recorder(offline_factory(name, cfg), name, cfg.team, seen)

        {"steady": steady, "full": full}[run](settings, factory, tmp, args.meetings)
        result = shares(seen)
        print(f"{run}: {args.meetings} meetings, {len(seen)} requests (offline provider)")
        for key in ("overall", "planning", "executive"):
            if key in result:
                share, n = result[key]
                verdict = "" if key == "executive" else f"   (target >= 85 %: {'OK' if share >= 0.85 else 'UNDER'})"
                print(f"  {key:<9} {share * 100:5.1f} % cacheable prefix over {n} requests{verdict}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
