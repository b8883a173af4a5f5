"""What the monitors say, line by line: the traffic share of every stage, which agents fell back
to the offline provider, which clock each time is on, when a running session counts as stale
(the rule the README states), and how a monitor is pointed at a workspace."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from urllib.parse import quote

from cvagents.config import CoordinationConfig
from cvagents.ui import dashboard_data as dd
from cvagents.ui.dashboard import ExecutionDashboard, PlanningDashboard
from cvagents.ui.source import WORKSPACE_ENV, choose_workspace

ROOT = Path(__file__).resolve().parents[2]


def _session(ws: Path) -> Path:
    return next((ws / "sessions").glob("session_*/session.json"))


def _set_session(ws: Path, **fields) -> None:
    f = _session(ws)
    f.write_text(json.dumps({**json.loads(f.read_text()), **fields}))


def _age_everything(ws: Path, seconds: float) -> None:
    t = time.time() - seconds
    for p in ws.rglob("*"):
        os.utime(p, (t, t))


def test_every_stage_shows_its_traffic_share_from_the_runs_plan(run_ws):
    e = dd.execution_data(dd.Source(run_ws))
    cfg = CoordinationConfig()
    shares = dict(zip(e["deployments"]["stage"], e["deployments"]["traffic"]))
    assert shares == {s: f"{p.traffic:.0%}" for s, p in cfg.rollout.stages.items()}
    assert "—" not in shares.values()


AGENTS = {
    **{
        f"agent_{i}": {"provider": "anthropic", "model": "claude", "configured": "anthropic", "fallback": None}
        for i in range(10)
    },
    "ops_monitor": {"provider": "offline", "model": "offline", "configured": "openai", "fallback": "no OPENAI_API_KEY"},
    "research_lead": {
        "provider": "offline",
        "model": "offline",
        "configured": "google",
        "fallback": "no GOOGLE_API_KEY",
    },
}


def test_the_planning_monitor_names_the_agents_that_fell_back(ws_copy):
    d = PlanningDashboard(ws_copy, refresh_seconds=0)
    d.refresh()  # the run was offline by its own choice (--provider offline): said as such
    assert "0 of 12 on their configured provider; 12 on the offline provider as the run asked" in d.header
    _set_session(ws_copy, agents=None)  # an older session: no such key, no line
    d.refresh()
    assert "configured provider" not in d.header
    _set_session(ws_copy, agents=AGENTS)
    d.refresh()
    assert (
        "10 of 12 on their configured provider; 2 fell back to the offline provider: ops_monitor "
        "(no OPENAI_API_KEY); research_lead (no GOOGLE_API_KEY)" in d.header
    )
    assert "all 12 agents" not in d.header
    _set_session(ws_copy, agents={k: {**v, "fallback": None, "provider": v["configured"]} for k, v in AGENTS.items()})
    d.refresh()
    assert "12 of 12 on their configured provider" in d.header and "fell back" not in d.header


def test_times_say_which_clock_they_are_on(run_ws):
    src = dd.Source(run_ws)
    p, e = dd.planning_data(src), dd.execution_data(src)
    for df in (p["meetings"], e["executions"], e["decisions"], e["go_no_go"]):
        assert dd.SIM_TIME in df.columns and "time" not in df.columns
    assert "done at (simulated)" in p["actions"].columns
    assert "submitted (wall clock)" in e["models"]["candidates"].columns
    d = ExecutionDashboard(run_ws, refresh_seconds=0)
    d.widget()
    d.refresh()
    assert "(wall clock)" in d.header and all("(wall clock)" in p.caption(p.updated) for p in d.panels)


def test_the_stale_rule_is_the_one_the_readme_states():
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert (
        "nothing changed for longer than two of the run's heartbeats plus a minute, in real time "
        "(11 minutes at `time_scale` 1, 2 minutes at 10), and never less than three refresh intervals "
        "or 90 seconds" in readme
    )
    assert dd.stale_after(30, {"time_scale": 1}) == 11 * 60
    assert dd.stale_after(30, {"time_scale": 10}) == 2 * 60
    assert dd.stale_after(30, {"time_scale": 600}) == 90
    assert dd.stale_after(60, {"time_scale": 600}) == 3 * 60


def test_at_time_scale_1_stale_comes_after_eleven_minutes_and_says_why(ws_copy):
    _set_session(ws_copy, status="running", time_scale=1.0)
    _age_everything(ws_copy, 10.5 * 60)
    assert dd.health(dd.Source(ws_copy), refresh_seconds=30).state == "live"
    _age_everything(ws_copy, 11.5 * 60)
    h = dd.health(dd.Source(ws_copy), refresh_seconds=30)
    assert h.state == "stale" and "at least every 11 min" in h.message and "wall clock" in h.message


def test_which_workspace_a_monitor_reads(monkeypatch, tmp_path):
    monkeypatch.delenv("QUERY_STRING", raising=False)
    monkeypatch.delenv(WORKSPACE_ENV, raising=False)
    assert choose_workspace(None, tmp_path / "default") == str(tmp_path / "default")
    monkeypatch.setenv(WORKSPACE_ENV, "/from/env")
    assert choose_workspace(None, "x") == "/from/env"
    monkeypatch.setenv("QUERY_STRING", f"foo=1&workspace={quote('/from/the address')}")  # what Voilà sets
    assert choose_workspace(None, "x") == "/from/the address"
    assert choose_workspace("/the/parameter", "x") == "/the/parameter"


def test_the_workspace_box_points_the_dashboard_at_another_folder(run_ws, tmp_path):
    d = ExecutionDashboard(tmp_path / "nothing", refresh_seconds=0)
    box = d.widget()
    d.refresh()
    assert "EMPTY" in d.header
    text = d._workspace_w
    assert text in box.children and text.value == str(tmp_path / "nothing")
    text.value = str(run_ws)  # what typing a folder and pressing Enter does
    assert d.workspace == str(run_ws) and "FINISHED" in d.header and d._header_w.value == d.header
