"""One layout for every reader: a run on a non-default ``workspace:`` layout with custom stage
names and thresholds, read back — on the workspace and on its mirror — by ``cvagents status``,
the dashboards' data layer, the plots and ``rebuild-reports``, given only the folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cvagents.config import load_coordination_config
from cvagents.execution.tools import ToolContext, default_registry
from cvagents.run.rebuild import rebuild_reports
from cvagents.ui import dashboard_data as dd
from cvagents.ui import plots
from cvagents.ui.status import collect_status, format_status
from cvagents.workspace import Workspace

LAYOUT = {
    "planning": "out/meetings",
    "execution": "out/heartbeats",
    "handoff": "out/handoff",
    "metrics": "measured/all/metrics.json",
    "deployment": "stages",
    "research": "models",
    "validation_set": "valset",
    "sessions": "journal",
    "log": "logs/run.log",
}
ROOT = Path(__file__).resolve().parents[2]
RENAMED = {"shadow": "dark", "5_percent": "canary", "20_percent": "quarter", "50_percent": "half", "production": "full"}
STAGES = list(RENAMED.values())

SID = "20250301_080000_1a0a0a"  # the run's session id, in the format the CLI checks


def _project(root: Path, project_root: Path) -> Path:
    """configs/, prompts/ and the handoff docs, with the layout, stage names and two thresholds changed."""
    for d in ("configs", "prompts", "reports"):
        shutil.copytree(project_root / d, root / d)
    p = root / "configs" / "autonomous_coordination.yaml"
    c = yaml.safe_load(p.read_text())
    c["workspace"] = LAYOUT
    ro = c["rollout"]
    ro["stages"] = {RENAMED[k]: v for k, v in ro["stages"].items()}
    ro["artifact_folders"] = ["models"]
    ro["gates"]["ndcg_at_10"]["threshold"] = 0.7
    ro["gates"]["latency_p95_ms"]["threshold"] = 40.0
    c["tools"] = {"script_folders": ["models"]}
    p.write_text(yaml.safe_dump(c, sort_keys=False))
    return root


@pytest.fixture(scope="module")
def custom_run(tmp_path_factory):
    """Two meetings on the offline provider, mirrored to a folder; then a deployment to the
    first stage through the deploy tool, on the run's own config."""
    from cvagents.runner import run_system

    base = tmp_path_factory.mktemp("layout")
    project = _project(base / "project", ROOT)
    ws, mirror = base / "ws", base / "drive" / "mirror"
    (ws / "models").mkdir(parents=True)
    (ws / "models" / "v1_production.pth").write_bytes(b"an artifact with a sha256\n" * 100)
    (ws / "valset").mkdir()
    (ws / "valset" / "dataset_info.json").write_text('{"version": "1.0"}')
    result = run_system(
        ws,
        provider="offline",
        meetings=2,
        manual_clock=True,
        start_time="2026-03-01T08:00:00",
        session_id=SID,
        project_root=project,
        mirror_to=mirror,
        console=False,
        handle_sigint=False,
    )
    assert result["status"] == "finished", result
    cfg = load_coordination_config(project / "configs" / "autonomous_coordination.yaml")
    ctx = ToolContext(Workspace.from_config(ws, cfg), cfg, action_key="by-hand#1")
    o = default_registry().call(ctx, "deploy_model", {"model_path": "models/v1_production.pth", "stage": "dark"})
    assert o.ok, o.result
    return ws, mirror, o.result["version"]


def test_the_run_wrote_its_layout_and_left_its_descriptor(custom_run):
    ws, mirror, _ = custom_run
    for rel in ("out/meetings", "out/heartbeats", "out/handoff/pending_actions.json", "measured/all/metrics.json"):
        assert (ws / rel).exists(), rel
    assert list((ws / "journal").glob(f"session_{SID}/trajectories/segment_*.jsonl"))
    assert not (ws / "reports" / "planning").exists() and not (ws / "sessions").exists()
    assert Workspace.open(ws).stages == tuple(STAGES)
    assert (mirror / "meta" / "workspace.json").read_bytes() == (ws / "meta" / "workspace.json").read_bytes()


@pytest.mark.parametrize("where", ["workspace", "mirror"])
def test_status_sees_the_runs_stages_and_paths(custom_run, where):
    ws, mirror, version = custom_run
    s = collect_status(ws if where == "workspace" else mirror)
    assert list(s["stages"]) == STAGES
    assert s["session"]["session_id"] == SID and s["session"]["status"] == "finished"
    assert set(s["essential_files"]) == {
        "models/v1_production.pth",
        "measured/all/metrics.json",
        "valset/dataset_info.json",
    }
    if where == "workspace":
        assert s["stages"]["dark"] == version and s["essential_present"]
        assert s["meetings"] == 2  # counted in the layout's log, logs/run.log
    line = next(ln for ln in format_status(s).splitlines() if ln.startswith("🚦 Stages:"))
    assert line.startswith("🚦 Stages: dark=") and "full=" in line and "shadow" not in line


@pytest.mark.parametrize("where", ["workspace", "mirror"])
def test_the_dashboards_data_layer_sees_the_runs_stages_paths_and_thresholds(custom_run, where):
    ws, mirror, _ = custom_run
    src = dd.Source(ws if where == "workspace" else mirror)
    assert src.is_mirror == (where == "mirror")
    assert src.stages == tuple(STAGES)
    p = dd.planning_data(src)
    e = dd.execution_data(src)
    assert len(p["meetings"]) == 2 and p["plan_meeting"] and len(p["actions"])  # out/meetings, out/handoff
    assert e["heartbeats"] > 0 and sum(e["counts"].values()) > 0  # out/heartbeats
    assert e["rollout"]["stages_order"] == STAGES and list(e["deployments"]["stage"]) == STAGES
    assert e["stages"] == tuple(STAGES)
    assert e["thresholds"]["ndcg_at_10_min"] == 0.7 and e["thresholds"]["latency_p95_ms_max"] == 40.0
    # the offline team asks for "shadow", which this layout does not have: an argument the agent can
    # fix, sent back to it as a failed call, never a refusal in the decisions log
    assert not [r for r in e["decisions"].itertuples() if r.kind == "refused" and r.stage not in STAGES]
    h = dd.health(src)
    assert h.state == "finished" and h.session["session_id"] == SID and not h.missing
    figs = plots.workspace_figures(src, p, e)
    assert set(figs) >= {"ndcg_at_10", "tool_executions", "participation"}


def test_plot_colours_stages_by_their_place_in_the_plan():
    colours = plots.stage_colors(STAGES)
    assert colours == dict(zip(STAGES, ("#6d6d6d", "#1565c0", "#6a1b9a", "#00838f", "#2e7d32")))
    assert plots.stage_colors(("shadow", "5_percent", "20_percent", "50_percent", "production"))["production"] == (
        "#2e7d32"
    )


def test_rebuild_reports_rebuilds_into_the_runs_layout_given_only_the_folder(custom_run, tmp_path):
    ws, _, _ = custom_run
    copy = tmp_path / "ws"
    shutil.copytree(ws, copy)
    written = {p.relative_to(copy): p.read_bytes() for p in (copy / "out").rglob("*") if p.is_file()}
    shutil.rmtree(copy / "out")
    p = subprocess.run(
        [sys.executable, "-m", "cvagents", "rebuild-reports", "--workspace", str(copy), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["session_id"] == SID
    assert {q.relative_to(copy): q.read_bytes() for q in (copy / "out").rglob("*") if q.is_file()} == written
    assert rebuild_reports(copy)["meetings"] == 2


def test_a_workspace_from_before_the_descriptor_opens_with_the_defaults(tmp_path):
    ws = Workspace.open(tmp_path / "old")
    assert ws.stages == ("shadow", "5_percent", "20_percent", "50_percent", "production")
    assert ws.metrics_file == (tmp_path / "old").resolve() / "runs/report/metrics.json"
    assert list(collect_status(tmp_path / "old")["stages"]) == list(ws.stages)


def test_a_damaged_descriptor_is_a_known_error_for_status_and_a_partial_copy_for_the_monitors(tmp_path):
    from cvagents.errors import CVAgentsError
    from cvagents.workspace import WorkspaceError

    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "workspace.json").write_text('{"format": 1, "coordination": {"rollout": ')
    with pytest.raises(WorkspaceError) as e:
        Workspace.open(tmp_path)
    assert isinstance(e.value, CVAgentsError) and "meta/workspace.json" in str(e.value)
    src = dd.Source(tmp_path)
    assert src.stages == ("shadow", "5_percent", "20_percent", "50_percent", "production")
    assert "meta/workspace.json" in src.missing


def test_approve_takes_the_stages_from_the_workspace(custom_run, capsys):
    from cvagents.cli import main

    ws, _, version = custom_run
    assert main(["approve", "--workspace", str(ws), "--stage", "canary", "--by", "tester", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["stage"] == "canary" and rec["version"] == version and rec["approved_by"] == "tester"
    assert main(["approve", "--workspace", str(ws), "--stage", "5_percent"]) == 2  # not a stage of this run
    assert "unknown stage '5_percent'" in capsys.readouterr().err
