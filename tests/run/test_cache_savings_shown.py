"""Cached input tokens and the money they saved, in the costs file, the planning summary and
``cvagents status``."""

import json

from agent_backend import FRESH_STATE as STATE

from cvagents.config import CoordinationConfig, Settings
from cvagents.llm.base import Usage
from cvagents.llm.cost import CostLedger
from cvagents.planning.meeting import Meeting
from cvagents.planning.team import build_teams
from cvagents.run import reports
from cvagents.ui.status import collect_status, format_status
from cvagents.workspace import Workspace

CACHED = Usage(input_tokens=2000, output_tokens=100, cached_tokens=1500, cache_write_tokens=0)
# sonnet: 1500 tokens read at 0.3 instead of 3.0 per million
SAVED = round(1500 * 2.7 / 1e6, 6)


def test_the_summary_shows_what_caching_saved(project_root, scripted_provider):
    ledger = CostLedger()
    out = Meeting(build_teams(Settings(project_root), lambda n, c: scripted_provider)).hold("m1", 1, "t", STATE, [])
    ledger.record_call(
        agent="critic", provider="anthropic", model="claude-sonnet-4-20250514", usage=CACHED, meeting_id="m1"
    )
    rec = reports.meeting_record(out, "t", ledger.cost_by_agent("m1"), {}, ledger.cost_by_agent("m1", saved=True))
    assert rec["saved_by_agent"] == {"critic": SAVED}
    text = reports.render_summary(json.loads(json.dumps(rec)))
    assert "| cost (USD) | saved by caching (USD) |" in text
    critic = next(line for line in text.splitlines() if line.startswith("| critic |"))
    assert critic.endswith(f"| {SAVED:.6f} |")


def test_costs_and_status_show_cached_tokens_and_savings(tmp_path):
    ws = Workspace.from_config(tmp_path / "ws", CoordinationConfig()).create()
    ledger = CostLedger()
    ledger.record_call(agent="critic", provider="anthropic", model="claude-sonnet-4-20250514", usage=CACHED)
    ledger.record_call(agent="critic", provider="anthropic", model="claude-sonnet-4-20250514", usage=Usage(10, 1))
    reports.write_costs(ws, ledger)
    costs = json.loads(ws.costs_file.read_text())
    assert (costs["cached_tokens"], costs["saved_usd"], costs["saved_by_agent"]) == (1500, SAVED, {"critic": SAVED})
    text = format_status(collect_status(ws.root))
    assert f"prompt cache: 1500 input tokens read from it, saving ${SAVED:.6f}" in text


def test_status_counts_failovers_apart_from_budget_downgrades(tmp_path):
    from cvagents.llm.cost import FAILOVER, PER_DAY, Downgrade

    ws = Workspace.from_config(tmp_path / "ws", CoordinationConfig()).create()
    ledger = CostLedger()
    ledger.record_call(agent="critic", provider="openai", model="gpt-4o", usage=Usage(10, 1))

    def step(budget, reason=""):
        d = Downgrade("critic", None, "d", "openai", "gpt-4o", "openai", "gpt-4o-mini", budget, 0.0, reason=reason)
        ledger.record_downgrade(d)

    step(PER_DAY)
    step(FAILOVER, "HTTP 429: asked to wait 300s")
    step(FAILOVER, "HTTP 503: overloaded")
    reports.write_costs(ws, ledger)
    lines = format_status(collect_status(ws.root)).splitlines()
    assert "   budget downgrades: 1" in lines
    assert "   failovers: 2 (last: critic: HTTP 503: overloaded)" in lines
