"""The monitors between two steps of a run, not only after it: a workspace after the first
deployment only, after an evaluation without a traffic replay, after a failed step, after a
rollback, and an empty one (``tests/monitor_states.py`` makes them from one real run). Every panel draws, and
a panel that fails says so in its place instead of taking the dashboard down."""

from __future__ import annotations

import json
import re

import pytest
from monitor_states import STATES, make_state

from cvagents.ui import dashboard_data as dd
from cvagents.ui import plots
from cvagents.ui.dashboard import ExecutionDashboard, PlanningDashboard

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def states(run_ws, tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("states")
    return {name: make_state(run_ws, base / name, name) for name in STATES}


def test_the_states_are_what_their_names_say(states):
    deployed = dd.execution_data(dd.Source(states["deployed"]))
    assert deployed["metrics"].empty and list(deployed["decisions"]["kind"]) == ["deployment"]
    ev = dd.execution_data(dd.Source(states["evaluated"]))["metrics"]
    assert ev["ndcg_at_10"].notna().any() and ev["slo_compliance"].isna().all()  # no traffic replay yet
    failed = dd.execution_data(dd.Source(states["failed"]))
    assert failed["counts"]["failed"] >= 1 and failed["metrics"]["slo_compliance"].isna().all()
    rb = dd.execution_data(dd.Source(states["rolled_back"]))
    assert rb["decisions"]["kind"].iloc[0] == "rollback" and "rollback" in set(rb["events"]["kind"])
    assert (
        json.loads(next((states["evaluated"] / "sessions").glob("*/session.json")).read_text())["status"] == "running"
    )


@pytest.mark.parametrize("name", STATES)
def test_every_panel_draws_in_every_state(states, name):
    for kind in (ExecutionDashboard, PlanningDashboard):
        d = kind(states[name], refresh_seconds=0)
        d.widget()
        r = d.refresh()
        assert r["error"] is None, r["error"]
        assert all(p.value and not p.error for p in d.panels), [(p.key, p.error) for p in d.panels]
        assert all(p.value.startswith(PNG) for p in d.panels if p.kind == "figure")
    expected = {"empty": "EMPTY", "rolled_back": "FINISHED"}.get(name, "STALE")  # the session says running
    assert expected in d.header or "LIVE" in d.header


def test_the_failed_step_and_the_rollback_are_on_the_execution_monitor(states):
    d = ExecutionDashboard(states["failed"], refresh_seconds=0)
    d.refresh()
    assert re.search(r"<b>[1-9]\d*</b> failed", d.header), d.header
    assert "the traffic replay crashed" in d.panels[[p.key for p in d.panels].index("executions")].value
    d = ExecutionDashboard(states["rolled_back"], refresh_seconds=0)
    d.refresh()
    rollout = next(p for p in d.panels if p.key == "rollout").value
    assert "rollback" in rollout and "rolled_back" in rollout
    e = dd.execution_data(dd.Source(states["rolled_back"]))
    fig = plots.metrics_figure(e["metrics"], e["thresholds"], e["stages"], e["events"])
    colors = {ln.get_color() for ax in fig.axes for ln in ax.get_lines() if len(set(ln.get_xdata())) == 1}
    assert plots.EVENT_STYLE["rollback"][0] in colors and plots.EVENT_STYLE["promotion"][0] in colors


def test_a_panel_that_fails_shows_its_error_and_the_others_still_draw(states, monkeypatch, capsys):
    """With refresh_seconds=0 (papermill, a saved notebook) a failing panel used to raise out
    of show() and kill the notebook."""
    from IPython.core.interactiveshell import InteractiveShell

    InteractiveShell.instance()

    def broken(*_a, **_k):
        raise IndexError("too many indices for array")

    monkeypatch.setattr(plots, "metrics_figure", broken)
    d = ExecutionDashboard(states["evaluated"], refresh_seconds=0).show()  # does not raise
    assert "ERROR" in d.header and "IndexError" in d.header
    failed = [p for p in d.panels if p.error]
    assert [p.key for p in failed] == ["metrics"] and "could not draw this panel" in failed[0].caption("x")
    assert all(p.value for p in d.panels if p.key != "metrics")


def test_a_failing_read_still_renders_once(states, monkeypatch):
    def broken(self, src):
        raise OSError("Drive went away")

    monkeypatch.setattr(ExecutionDashboard, "collect", broken)
    d = ExecutionDashboard(states["deployed"], refresh_seconds=0).show()
    assert "ERROR" in d.header and "Drive went away" in d.header
