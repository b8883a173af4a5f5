"""The ipywidgets dashboards: panels filled from a real run, redrawn only on new data, refreshed
on a background thread that sets widget values, on ipywidgets 8 and on Colab's 7.7."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from test_dashboard_workspace import ipywidgets7_env, ipywidgets7_overlay
from waiting import wait_for

from cvagents.config import load_coordination_config
from cvagents.rollout import approval
from cvagents.ui.dashboard import ExecutionDashboard, PlanningDashboard, SystemDashboard
from cvagents.ui.panels import fmt
from cvagents.workspace import Workspace

PNG = b"\x89PNG\r\n\x1a\n"


def new_evaluation(ws: Path, ndcg: float) -> None:
    """What the run does after an evaluation: a new record in metrics.json (atomically)."""
    f = ws / "runs/report/metrics.json"
    m = json.loads(f.read_text())
    rec = {
        **m["history"][-1],
        "id": f"eval_test_{ndcg}",
        "kind": "evaluation",
        "time": "2099-01-01T00:00:00+00:00",
        "ndcg_at_10": ndcg,
        "ndcg_at_10_ci95": [ndcg - 0.01, ndcg + 0.01],
    }
    m["history"].append(rec)
    m["latest"] = {**(m.get("latest") or {}), **rec}
    tmp = f.with_name(".metrics.json.tmp")
    tmp.write_text(json.dumps(m))
    os.replace(tmp, f)


def test_execution_dashboard_shows_the_runs_numbers(run_ws):
    d = ExecutionDashboard(run_ws, refresh_seconds=0)
    d.widget()
    r = d.refresh()
    assert r["error"] is None and set(r["redrawn"]) == {p.key for p in d.panels}
    metrics = json.loads((run_ws / "runs/report/metrics.json").read_text())
    state = json.loads((run_ws / "reports/rollout_state.json").read_text())
    assert fmt(metrics["latest"]["ndcg_at_10"]) in d.header
    assert state["current"]["version"] in d.header and "FINISHED" in d.header
    figures = [p for p in d.panels if p.kind == "figure"]
    assert {p.key for p in figures} == {"metrics", "executions_fig"}
    for p in figures:
        assert bytes(p._w["body"].value).startswith(PNG) and "updated" in p._w["caption"].value
    html = {p.key: p._w["body"].value for p in d.panels if p.kind == "html"}
    assert state["stages"]["shadow"]["version"] in html["deployments"]
    assert all(g["gate"] in html["rollout"] for g in state["current"]["gates"])


def _awaiting_production(ws) -> str:
    """Make the workspace's rollout state say that its current version waits for approval."""
    f = ws / "reports/rollout_state.json"
    st = json.loads(f.read_text())
    sha = st["current"]["sha256"]
    st["rollout"]["awaiting_approval"] = {
        "stage": "production",
        "version": st["current"]["version"],
        "sha256": sha,
        "command": f"cvagents approve --workspace {ws} --stage production",
    }
    f.write_text(json.dumps(st))
    return sha


def test_the_approve_button_records_the_approval_the_run_waits_for(ws_copy, project_root):
    sha = _awaiting_production(ws_copy)
    d = ExecutionDashboard(ws_copy, refresh_seconds=0)
    d.widget()
    d.refresh()
    button, text = d._approve_w["button"], d._approve_w["text"]
    assert button.layout.display == "" and button.description.endswith("for production")
    assert "waiting for a human approval before <b>production</b>" in d.header and "waiting" in text.value
    button.click()
    cfg = load_coordination_config(project_root / "configs/autonomous_coordination.yaml")
    rec = approval.approval(Workspace.from_config(ws_copy, cfg), "production", sha)
    assert rec is not None and rec["note"] == "approved from the execution monitor"
    assert button.layout.display == "none" and "Approved" in text.value


def test_a_mirror_shows_the_approve_command_instead_of_a_button(ws_copy):
    _awaiting_production(ws_copy)
    files = {str(f.relative_to(ws_copy)): {"size": f.stat().st_size} for f in ws_copy.rglob("*") if f.is_file()}
    (ws_copy / "MANIFEST.json").write_text(json.dumps({"files": files, "written_at": "2026-01-01T00:00:00+00:00"}))
    d = ExecutionDashboard(ws_copy, refresh_seconds=0)
    d.widget()
    d.refresh()
    assert d._approve_w["button"].layout.display == "none"
    assert "cvagents approve --workspace" in d._approve_w["text"].value
    assert d.approve() is None and not (ws_copy / "reports/rollout/approvals").exists()


def test_planning_dashboard_shows_actions_with_owner_priority_status(run_ws):
    d = PlanningDashboard(run_ws, refresh_seconds=0)
    d.widget()
    assert d.refresh()["error"] is None
    handoff = json.loads((run_ws / "reports/handoff/pending_actions.json").read_text())
    actions = next(p for p in d.panels if p.key == "actions").value
    for a in handoff["actions"]:
        assert a["owner"] in actions and a["action"].replace("'", "&#x27;") in actions
    assert "succeeded" in actions and handoff["meeting_id"] in actions
    tokens = next(p for p in d.panels if p.key == "tokens_fig")
    assert tokens.value.startswith(PNG)


def test_unchanged_data_is_not_redrawn_and_new_data_is(ws_copy):
    d = ExecutionDashboard(ws_copy, refresh_seconds=0)
    d.widget()
    d.refresh()
    assert d.refresh()["redrawn"] == []
    before = next(p for p in d.panels if p.key == "metrics").value
    new_evaluation(ws_copy, 0.7777)
    r = d.refresh()
    assert r["redrawn"] == ["metrics"]  # only the figure whose data changed (and the header)
    assert next(p for p in d.panels if p.key == "metrics").value != before and "0.7777" in d.header


def test_the_thread_sets_widget_values_and_the_kernel_stays_free(ws_copy):
    d = ExecutionDashboard(ws_copy, refresh_seconds=0.2)
    header = d.widget().children[0]
    setters: list[str] = []
    header.observe(lambda change: setters.append(threading.current_thread().name), "value")
    t0 = time.monotonic()
    d.start()
    assert time.monotonic() - t0 < 0.5  # start returns at once; the refresh runs on the thread
    assert wait_for(lambda: d.refreshes >= 2)
    new_evaluation(ws_copy, 0.6543)
    assert wait_for(lambda: "0.6543" in header.value), header.value
    fig = next(p for p in d.panels if p.key == "metrics")
    assert "updated" in fig._w["caption"].value
    assert setters and set(setters) == {"cvagents-ExecutionDashboard"}
    d.stop()
    assert not d.running


def test_running_a_dashboard_again_stops_the_old_one(run_ws):
    a = ExecutionDashboard(run_ws, refresh_seconds=0.1).start()
    assert wait_for(lambda: a.refreshes >= 1)
    b = ExecutionDashboard(run_ws, refresh_seconds=0.1).start()
    assert not a.running and b.running


def test_a_failing_refresh_is_shown_and_the_loop_goes_on(run_ws, monkeypatch):
    d = PlanningDashboard(run_ws, refresh_seconds=0.1)
    real = PlanningDashboard.collect
    calls = {"n": 0}

    def flaky(self, src):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("Drive went away")
        return real(self, src)

    monkeypatch.setattr(PlanningDashboard, "collect", flaky)
    d.widget()
    d.refresh()
    assert "Drive went away" in d.header and "ERROR" in d.header
    d.start()
    assert wait_for(lambda: d.refreshes >= 2 and d.error is None)
    assert "ERROR" not in d.header


def test_empty_workspace_renders_and_says_empty(tmp_path):
    d = SystemDashboard(tmp_path / "nothing", refresh_seconds=0)
    d.widget()
    assert d.refresh()["error"] is None
    assert "EMPTY" in d.header and all(p.value for p in d.panels)


def test_the_dashboards_work_on_ipywidgets_7_7(run_ws, tmp_path):
    """Colab ships ipywidgets 7.7.1: the same code, the thread and the widget state, on it."""
    target = ipywidgets7_overlay()
    if target is None:
        pytest.skip(
            "ipywidgets 7.7.1 could not be installed (pip install --no-deps --target <venv>/ipywidgets-7.7.1 ipywidgets==7.7.1 jupyterlab_widgets==1.1.11 ipython_genutils)"
        )
    script = textwrap.dedent(f"""
        import time, ipywidgets
        from ipywidgets.embed import embed_minimal_html
        from cvagents.ui.dashboard import ExecutionDashboard, PlanningDashboard
        assert ipywidgets.__version__ == "7.7.1", ipywidgets.__version__
        ds = [ExecutionDashboard({str(run_ws)!r}, 0.2), PlanningDashboard({str(run_ws)!r}, 0.2)]
        boxes = [d.widget() for d in ds]
        for d in ds:
            d.start()
        end = time.monotonic() + 20
        while time.monotonic() < end and not all(d.refreshes >= 2 for d in ds):
            time.sleep(0.05)
        for d in ds:
            d.stop()
            assert d.error is None and d.refreshes >= 2, (d.error, d.refreshes)
            assert all(p._w["body"].value for p in d.panels)
        embed_minimal_html({str(tmp_path / "state.html")!r}, views=boxes, title="cvagents")
        print("ok", ds[0].header.count("FINISHED"))
    """)
    p = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=ipywidgets7_env(target)
    )
    assert p.returncode == 0 and p.stdout.startswith("ok 1"), p.stdout + p.stderr
    state = (tmp_path / "state.html").read_text()
    assert '"version_major": 2' in state and "Executive Team monitor" in state  # the widget state of ipywidgets 7
