"""Every notebook executed with papermill on a short offline run, parameters injected as a user
would: the runners run the system, the monitors render the run's figures once."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from test_dashboard_workspace import run_workspace, seed

from cvagents.ui.panels import fmt

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
RUNNERS = ("coordinator", "autonomous_system_with_trajectory_preservation")
MONITORS = ("monitor_planning", "monitor_execution")


@pytest.fixture(scope="session")
def run_ws(trained_artifacts, tmp_path_factory) -> Path:
    return run_workspace(trained_artifacts, tmp_path_factory.getbasetemp())


SECRET = "sk-ant-test-never-in-a-notebook-0123456789"
FAKE_COLAB = """
import json, os


class SecretNotFoundError(Exception):
    pass


class _Drive:
    def mount(self, path, **kwargs):
        print(f"Mounted at {path} (fake)")


class _Userdata:
    def get(self, name):
        secrets = json.loads(os.environ.get("FAKE_COLAB_SECRETS", "{}"))
        if name not in secrets:
            raise SecretNotFoundError(name)
        return secrets[name]


class _Output:
    def enable_custom_widget_manager(self):
        print("custom widget manager enabled (fake)")


drive, userdata, output = _Drive(), _Userdata(), _Output()
"""


def fake_colab_env(tmp: Path, project: Path) -> dict[str, str]:
    """A kernel that looks like Colab's: ``google.colab`` imported at start (drive.mount,
    userdata.get from $FAKE_COLAB_SECRETS, output.enable_custom_widget_manager)."""
    root = tmp / "fake_colab"
    (root / "google" / "colab").mkdir(parents=True, exist_ok=True)  # no google/__init__.py: a namespace portion
    (root / "google" / "colab" / "__init__.py").write_text(FAKE_COLAB)
    (root / "sitecustomize.py").write_text("import google.colab  # a Colab kernel has it imported\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
    env["FAKE_COLAB_SECRETS"] = json.dumps({"ANTHROPIC_API_KEY": SECRET})
    env["CV_PROJECT_DIR"] = str(project)
    return env


@pytest.fixture(scope="module")
def executed(run_ws, trained_artifacts, tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """All four notebooks, two at a time (papermill, one kernel each): name -> (output, workspace).

    The coordinator and the execution monitor run in a fake Colab kernel: the drive folder is
    this checkout, the project is copied to a temporary "/content/cv_project", keys come from
    fake Colab Secrets, and the monitor reads the default mirror folder on the "Drive"."""
    from cvagents.durability.mirror import Mirror

    base = tmp_path_factory.mktemp("notebooks")
    project = base / "content" / "cv_project"
    seed(trained_artifacts, project / "workspace")
    drive = base / "drive"
    assert Mirror({d: run_ws / d for d in ("reports", "runs", "sessions")}, drive / "run_mirror").flush().ok
    colab = fake_colab_env(base, project)
    jobs = {
        "coordinator": (
            {
                "provider": "offline",
                "meetings": 1,
                "time_scale": 6000,
                "drive_folder": str(ROOT),
                "mirror_folder": str(base / "mirror"),
            },
            project / "workspace",
            colab,
        ),
        "autonomous_system_with_trajectory_preservation": (
            {"provider": "offline", "meetings": 1, "time_scale": 6000, "refresh_seconds": 0},
            seed(trained_artifacts, base / "ws_unified"),
            None,
        ),
        "monitor_execution": ({"refresh_seconds": 0, "drive_folder": str(drive)}, drive / "run_mirror", colab),
        "monitor_planning": ({"refresh_seconds": 0}, run_ws, None),
    }

    def run(name: str) -> tuple[Path, Path]:
        params, ws, env = jobs[name]
        if name in ("autonomous_system_with_trajectory_preservation", "monitor_planning"):
            params = {**params, "workspace": str(ws)}
        nb_out = base / f"{name}.out.ipynb"
        args = [a for k, v in params.items() for a in ("-p", k, str(v))]
        p = subprocess.run(
            [
                sys.executable,
                "-m",
                "papermill",
                str(NOTEBOOKS / f"{name}.ipynb"),
                str(nb_out),
                *args,
                "--cwd",
                str(base),
                "--log-level",
                "WARNING",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
        assert p.returncode == 0, f"{name} failed:\n{p.stdout[-3000:]}{p.stderr[-3000:]}"
        return nb_out, ws

    with ThreadPoolExecutor(2) as pool:
        return dict(zip(jobs, pool.map(run, jobs)))


def outputs(nb_path: Path) -> list[dict]:
    nb = nbformat.read(nb_path, as_version=4)
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def html_text(nb_path: Path) -> str:
    return "\n".join(
        "".join(o.get("data", {}).get("text/html", "")) + "".join(o.get("text", "")) for o in outputs(nb_path)
    )


def pngs(nb_path: Path) -> int:
    return sum("image/png" in o.get("data", {}) for o in outputs(nb_path))


@pytest.mark.parametrize("name", RUNNERS + MONITORS)
def test_notebook_has_a_tagged_parameters_cell_without_keys(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    src = params[0].source
    names = {t.id for node in ast.parse(src).body if isinstance(node, ast.Assign) for t in node.targets}
    assert not any(w in n.lower() for n in names for w in ("key", "secret", "token"))  # keys are never parameters
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # shipped clean
    expected = (
        {"workspace", "refresh_seconds"}
        if name in MONITORS
        else {
            "provider",
            "workspace",
            "drive_folder",
            "meetings",
            "time_scale",
            "meeting_config",
            "coordination_config",
            "resume",
        }
    )
    assert all(f"{p} = " in src for p in expected), src


@pytest.mark.parametrize("name", RUNNERS)
def test_runner_reads_colab_secrets_into_the_environment_only(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    colab = next(c.source for c in nb.cells if "colab_secrets_to_environ()" in c.source)
    assert "drive.mount(" in colab and "IN_COLAB" in colab
    assert "print(value" not in colab and "userdata" in colab


def test_coordinator_runs_the_system_and_shows_its_figures(executed):
    nb_out, ws = executed["coordinator"]
    nb = nbformat.read(nb_out, as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    text = html_text(nb_out)
    assert "Mounted at /content/drive (fake)" in text and "✅ Core System:" in text  # Drive mounted, project synced
    assert "API keys from Colab Secrets: ANTHROPIC_API_KEY" in text
    assert SECRET not in nb_out.read_text() and "mirror:    " + str(nb_out.parent / "mirror") in text
    assert "Meeting complete!" in text and "HEARTBEAT CYCLE #1" in text and "📋 Meetings: 1" in text
    assert len(list((ws / "reports/planning").glob("actions_meeting_*.json"))) == 1
    assert pngs(nb_out) == 6 and len(list((ws / "reports/plots").glob("*.png"))) == 6


def test_unified_notebook_runs_in_the_background_then_renders_the_dashboard_and_history(executed):
    nb_out, ws = executed["autonomous_system_with_trajectory_preservation"]
    text = html_text(nb_out)
    assert "'status': 'finished'" in text and "'meetings': 1" in text
    assert "Autonomous system — live dashboard" in text and "FINISHED" in text
    assert pngs(nb_out) == 4  # 2 execution figures + 2 planning figures
    for f in (ws / "reports/planning").glob("actions_meeting_*.json"):
        assert f.stem.removeprefix("actions_") in text  # the complete meeting history
    assert "Mirror off." in text


def test_monitors_show_the_runs_numbers_and_figures(executed, run_ws):
    metrics = json.loads((run_ws / "runs/report/metrics.json").read_text())
    state = json.loads((run_ws / "reports/rollout_state.json").read_text())
    ex = html_text(executed["monitor_execution"][0])  # on "Colab", from the mirror on "Drive"
    assert fmt(metrics["latest"]["ndcg_at_10"]) in ex and state["current"]["version"] in ex
    assert "Executive Team monitor" in ex and "rendered once" in ex and "custom widget manager enabled" in ex
    assert "mirror: <code>" + str(executed["monitor_execution"][1]) in ex
    assert pngs(executed["monitor_execution"][0]) == 2
    pl = html_text(executed["monitor_planning"][0])
    handoff = json.loads((run_ws / "reports/handoff/pending_actions.json").read_text())
    assert "Planning Team monitor" in pl and handoff["meeting_id"] in pl and handoff["actions"][0]["owner"] in pl
    assert pngs(executed["monitor_planning"][0]) == 2


def test_rerunning_the_coordinator_on_a_new_vm_resumes_from_the_mirror(executed, tmp_path):
    """A disconnect on Colab loses /content: re-running the notebook restores the workspace
    from the mirror on Drive and goes on from it (a new session, since the mirrored one had
    finished; an unfinished one is continued: tests/durability/test_mirror_run.py)."""
    import inspect

    import papermill

    from cvagents.runner import run_system

    if "resume_from" not in inspect.signature(run_system).parameters:
        pytest.skip("run_system cannot restore from a mirror")
    first_out, first_ws = executed["coordinator"]
    mirror = first_out.parent / "mirror"
    first = json.loads(next((first_ws / "sessions").glob("session_*/session.json")).read_text())
    assert (mirror / "MANIFEST.json").is_file()
    fresh = tmp_path / "new_vm_workspace"
    out = tmp_path / "rerun.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / "coordinator.ipynb"),
        str(out),
        parameters={
            "provider": "offline",
            "meetings": 2,
            "time_scale": 6000,
            "workspace": str(fresh),
            "mirror_folder": str(mirror),
        },
        cwd=str(tmp_path),
        progress_bar=False,
        log_output=False,
    )
    text = html_text(out)
    # the mirror's session had finished: as on the VM that ran it, the same command starts a new
    # session on the restored workspace, and says so
    assert "Restoring the workspace from the mirror" in text and "New session" in text
    assert f"the last session {first['session_id']} finished" in text
    restored = fresh / "sessions" / f"session_{first['session_id']}" / "session.json"
    assert json.loads(restored.read_text())["status"] == "finished"
    new = [json.loads(p.read_text()) for p in (fresh / "sessions").glob("session_*/session.json") if p != restored]
    assert len(new) == 1 and new[0]["meetings_held"] == 2 and new[0]["status"] == "finished"


@pytest.fixture(scope="module")
def between_steps(run_ws, tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """The monitor notebooks on the states between two steps of a run (tests/monitor_states.py),
    as papermill renders them once: (state, notebook) -> (output, its text). The planning
    monitor on the failed state finds its folder through $CVAGENTS_WORKSPACE (no parameter)."""
    from monitor_states import STATES, make_state

    base = tmp_path_factory.mktemp("between_steps")
    states = {name: make_state(run_ws, base / "states" / name, name) for name in STATES}
    jobs = [(name, "monitor_execution") for name in STATES] + [
        ("evaluated", "monitor_planning"),
        ("failed", "monitor_planning"),
    ]

    def run(job: tuple[str, str]) -> tuple[Path, str]:
        state, nb = job
        out = base / f"{nb}_{state}.ipynb"
        env = dict(os.environ)
        params = ["-p", "refresh_seconds", "0"]
        if nb == "monitor_planning" and state == "failed":
            env["CVAGENTS_WORKSPACE"] = str(states[state])
        else:
            params += ["-p", "workspace", str(states[state])]
        p = subprocess.run(
            [sys.executable, "-m", "papermill", str(NOTEBOOKS / f"{nb}.ipynb"), str(out), *params],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
            cwd=base,
        )
        assert p.returncode == 0, f"{nb} on {state} failed:\n{p.stdout[-3000:]}{p.stderr[-3000:]}"
        return out, html_text(out)

    with ThreadPoolExecutor(2) as pool:
        return {**dict(zip(jobs, pool.map(run, jobs))), "states": states}


@pytest.mark.parametrize("state", ["empty", "deployed", "evaluated", "failed", "rolled_back"])
def test_the_execution_monitor_renders_every_state_between_steps(between_steps, state):
    out, text = between_steps[(state, "monitor_execution")]
    assert "Executive Team monitor" in text and "data-state='error'" not in text and "could not draw" not in text
    assert pngs(out) == 2  # the metrics figure and the executions figure, in every state
    ws = between_steps["states"][state]
    assert f"workspace: <code>{ws}" in text
    if state == "empty":
        assert "EMPTY" in text
    elif state == "deployed":
        assert "deployment" in text and "no controller decision yet" not in text
    elif state == "evaluated":  # the state whose metrics figure used to raise IndexError
        latest = json.loads((ws / "runs/report/metrics.json").read_text())["latest"]
        assert fmt(latest["ndcg_at_10"]) in text and ("LIVE" in text or "STALE" in text)  # the session is running
    elif state == "failed":
        assert "the traffic replay crashed" in text
    else:
        assert "rollback" in text and "FINISHED" in text


def test_the_planning_monitor_renders_between_steps_and_finds_its_folder_in_the_environment(between_steps):
    for state in ("evaluated", "failed"):
        out, text = between_steps[(state, "monitor_planning")]
        assert "Planning Team monitor" in text and "data-state='error'" not in text and pngs(out) == 2
        assert f"workspace: <code>{between_steps['states'][state]}" in text  # failed: via $CVAGENTS_WORKSPACE
