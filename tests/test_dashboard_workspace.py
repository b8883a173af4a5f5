"""One short offline run shared by the dashboard, plot, notebook and browser tests, and the
contract between the run and the dashboards: the files and fields the dashboards read.

Other test modules import ``run_workspace`` and ``seed`` from here; the run happens once per
pytest process, on the model that ``trained_artifacts`` (conftest) trains once per session.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

_RUN: dict[str, Path] = {}


def seed(trained: Path, ws: Path) -> Path:
    """A fresh workspace that already holds the trained model and validation set."""
    for sub in ("research", "data"):
        shutil.copytree(trained / sub, ws / sub)
    return ws


def run_workspace(trained: Path, base: Path) -> Path:
    """The workspace of a 3-meeting offline run (made on first use, then reused)."""
    if "ws" not in _RUN:
        from cvagents.runner import run_system

        ws = seed(trained, base / "dashboard_run")
        result = run_system(ws, provider="offline", meetings=3, time_scale=6000, console=False, handle_sigint=False)
        assert result["status"] == "finished", result
        _RUN["ws"] = ws
    return _RUN["ws"]


def test_the_run_writes_what_the_planning_monitor_reads(run_ws):
    actions = sorted((run_ws / "reports/planning").glob("actions_meeting_*.json"))
    assert len(actions) == 3
    a = json.loads(actions[-1].read_text())
    assert {
        "meeting_id",
        "timestamp",
        "status",
        "decisions",
        "go_no_go",
        "actions",
        "count",
        "participants",
        "absent",
        "usage_by_agent",
        "cost_by_agent",
    } <= set(a)
    assert {"id", "action", "owner", "priority"} <= set(a["actions"][0])
    h = json.loads((run_ws / "reports/handoff/pending_actions.json").read_text())
    assert h["meeting_id"] == a["meeting_id"]
    costs = json.loads((run_ws / "reports/costs.json").read_text())
    assert {"usage_by_agent", "by_agent"} <= set(costs)


def test_the_run_writes_what_the_execution_monitor_reads(run_ws):
    hb = json.loads(sorted((run_ws / "reports/execution").glob("execution_*.json"))[-1].read_text())
    assert {"heartbeat_id", "heartbeat", "timestamp", "meeting_id", "executions", "actions"} <= set(hb)
    assert {"agent", "action_id", "tool", "status", "result", "duration_s"} <= set(hb["executions"][0])
    assert {"action_id", "status"} <= set(hb["actions"][0])
    state = json.loads((run_ws / "reports/rollout_state.json").read_text())
    assert {"stages_order", "stages", "current", "thresholds"} <= set(state)
    assert {"stage", "version", "verdict", "gates"} <= set(state["current"])
    assert {"gate", "status", "value", "threshold"} <= set(state["current"]["gates"][0])
    metrics = json.loads((run_ws / "runs/report/metrics.json").read_text())
    rec = metrics["history"][-1]
    assert {"time", "stage", "version", "ndcg_at_10", "ndcg_at_10_ci95", "latency_p95_ms", "slo_compliance"} <= set(rec)
    session = json.loads(next((run_ws / "sessions").glob("session_*/session.json")).read_text())
    assert {"session_id", "status", "time_scale", "meetings_held", "heartbeats"} <= set(session)


IPYWIDGETS7 = (
    "ipywidgets==7.7.1",
    "jupyterlab_widgets==1.1.11",
    "ipython_genutils==0.2.0",
)  # Colab's widgets, and their front end


def ipywidgets7_overlay() -> Path | None:
    """A folder holding ipywidgets 7.7.1 (Colab's) to put first on PYTHONPATH of a subprocess,
    with its JupyterLab front end under ``share/jupyter`` (JUPYTER_PATH). Installed once into
    the venv with ``pip --target``; None when pip cannot get it (no registry)."""
    import subprocess
    import sys

    target = Path(os.environ.get("CVAGENTS_IPYWIDGETS7") or Path(sys.prefix) / "ipywidgets-7.7.1")
    if (target / "ipywidgets" / "__init__.py").is_file() and (target / "share/jupyter/labextensions").is_dir():
        return target
    p = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), *IPYWIDGETS7],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return target if p.returncode == 0 and (target / "ipywidgets" / "__init__.py").is_file() else None


def ipywidgets7_env(target: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(target), *filter(None, [env.get("PYTHONPATH")])])
    env["JUPYTER_PATH"] = os.pathsep.join([str(target / "share" / "jupyter"), *filter(None, [env.get("JUPYTER_PATH")])])
    return env
