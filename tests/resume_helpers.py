"""In-process runs for the resume, rebuild and mirror tests: no torch, a scripted plan, the
manual clock, and a way to "crash" a run at the n-th provider call (the exception propagates
out of ``Coordinator.run`` with no clean-up of the run's state: the journal is closed, as the
kernel closes it for a killed process, and nothing else)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from fakes import ScriptedProvider, synthesis_json

from cvagents.clock import ManualClock
from cvagents.config import Settings
from cvagents.durability.journal import Journal
from cvagents.llm.cost import CostLedger
from cvagents.llm.factory import build_provider
from cvagents.planning.team import build_teams
from cvagents.run.coordinator import Coordinator, RunOptions

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)

# Torch-free actions the offline executives map onto real tools.
PLAN = [
    ("Deploy research/v1_production.pth to shadow.", "ops_commander", "high"),
    ("Run a rollback drill on shadow.", "rollback_officer", "high"),
    ("Collect metrics into runs/report/metrics.json.", "compliance_monitor", "medium"),
    ("Check that the essential files exist (research/v1_production.pth).", "infra_guardian", "low"),
    ("Check that the essential files exist (data/validation_set).", "infra_guardian", "low"),
]


class Crash(BaseException):
    """Stands in for a kill: not an Exception, so nothing on the way catches it."""


def scripted_plan(plan=PLAN) -> ScriptedProvider:
    """The offline provider with a fixed plan for every synthesis."""
    actions = [
        {
            "action": a,
            "owner": o,
            "priority": p,
            "estimated_duration": "5min",
            "success_criteria": "the tool result reports no error",
        }
        for a, o, p in plan
    ]
    decisions = [{"decision": "Proceed with shadow", "rationale": "scripted"}]
    return ScriptedProvider.as_offline().always(synthesis_json(actions, decisions), purpose="synthesis")


_last_run: list[ScriptedProvider] = []


def calls_in_last_run() -> int:
    """Provider calls (across all agents) that the last ``run()`` made."""
    return len(_last_run[-1].requests)


def seed(ws: Path) -> Path:
    """A workspace with a (dummy) model file and validation-set marker: enough for every
    torch-free tool."""
    (ws / "research").mkdir(parents=True, exist_ok=True)
    (ws / "research" / "v1_production.pth").write_bytes(b"not really a model, but an artifact with a sha256\n" * 100)
    (ws / "data" / "validation_set").mkdir(parents=True, exist_ok=True)
    (ws / "data" / "validation_set" / "dataset_info.json").write_text('{"version": "1.0"}')
    return ws


def settings(coordination_config: Path | None = None) -> Settings:
    return Settings(ROOT, None, coordination_config)


def coordinator(
    ws: Path, meetings: int, *, s: Settings | None = None, clock=None, provider: ScriptedProvider | None = None, **opts
) -> Coordinator:
    """A coordinator whose agents are wired as in a real run (budgets, costs, the ledger), all
    on one scripted offline provider (default: ``scripted_plan()``)."""
    s = s or settings()
    provider = provider or scripted_plan()
    clock = clock or ManualClock(START)
    ledger = CostLedger(s.meeting.budgets)
    m = s.meeting
    teams = build_teams(
        s,
        lambda name, cfg: build_provider(
            name,
            cfg,
            m.defaults,
            mode="offline",
            ledger=ledger,
            pricing=m.pricing,
            budgets=m.budgets,
            offline_provider=provider,
        ),
    )
    opts.setdefault("session_id", "t")
    return Coordinator(s, ws, RunOptions(meetings=meetings, console=False, **opts), teams, clock=clock, ledger=ledger)


def run(ws: Path, meetings: int, *, crash_at: int | None = None, **kw) -> tuple[dict | None, Coordinator]:
    """Run to the end, or until the crash_at-th provider call; returns (result or None, coordinator)."""
    provider = scripted_plan()
    if crash_at is not None:
        provider.fail_from(crash_at, Crash(f"crash at provider call {crash_at}"))
    _last_run[:] = [provider]
    c = coordinator(ws, meetings, provider=provider, **kw)
    try:
        return c.run(), c
    except Crash:
        return None, c
    finally:
        if c.mirror is not None:
            c.mirror.stop(timeout=10)
            c.mirror = None
        c.close()


def records(ws: Path, session: str = "t") -> list:
    j = Journal.open(ws / "sessions" / f"session_{session}" / "trajectories", read_only=True)
    try:
        return list(j.records(include_archived=True))
    finally:
        j.close()


def report_files(ws: Path) -> dict[str, object]:
    """reports/: text files as text, JSON parsed (the order of keys a parallel meeting fills in
    is not fixed), the workspace path normalised."""
    out: dict[str, object] = {}
    for p in sorted((ws / "reports").rglob("*")):
        if p.is_file():
            text = p.read_text(encoding="utf-8").replace(str(ws), "<ws>")
            out[str(p.relative_to(ws))] = json.loads(text) if p.suffix == ".json" else text
    return out
