"""The Colab bootstrap scripts, run off Colab with paths as arguments."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from test_dashboard_workspace import seed

ROOT = Path(__file__).resolve().parents[1]
SYNC = ROOT / "sync" / "sync_all_files.py"
DEPLOY = ROOT / "sync" / "deploy_updated_system.py"
CATEGORIES = (
    "Core System",
    "Multi-Agent Configs",
    "Execution Tools",
    "Planning Team Prompts",
    "Executive Team Prompts",
    "Research Context",
    "Deployment Scripts",
    "Evaluation & Data",
)


def run(script: Path, *args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    kw = kw or {"capture_output": True}
    return subprocess.run([sys.executable, str(script), *args], text=True, timeout=timeout, **kw)


@pytest.fixture(scope="module")
def synced(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    dest = tmp_path_factory.mktemp("colab") / "cv_project"
    return dest, run(SYNC, "--source", str(ROOT), "--dest", str(dest))


def test_sync_copies_the_project_and_reports_every_category(synced):
    dest, p = synced
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("✅ Successfully synced:")
    for name in CATEGORIES:
        line = next(ln for ln in lines if f" {name}: " in ln)
        found, expected = line.split(": ")[1].split("/")
        assert line.startswith("✅") and found == expected
    for f in (
        "configs/meeting.yaml",
        "prompts/planning_team/moderator.md",
        "prompts/executive_team/rollback_officer.md",
        "cvagents/execution/tools/deploy.py",
        "cvagents/models/evaluate.py",
        "reports/handoff/pending_actions_TEMPLATE.json",
        "pyproject.toml",
    ):
        assert (dest / f).is_file(), f
    assert not (dest / ".git").exists() and not (dest / ".venv").exists()


def _package_holds() -> set[str]:
    """What the package ships: every module, and the package data pyproject.toml declares."""
    held = {p.relative_to(ROOT).as_posix() for p in (ROOT / "cvagents").rglob("*.py") if "__pycache__" not in p.parts}
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"].get("package-data", {})
    for package, patterns in data.items():
        folder = ROOT.joinpath(*package.split("."))
        for pattern in patterns:
            held |= {p.relative_to(ROOT).as_posix() for p in folder.glob(pattern) if p.is_file()}
    return held


def test_sync_copies_the_whole_package_recursively(synced):
    dest, p = synced
    assert p.returncode == 0, p.stdout + p.stderr
    copied = {q.relative_to(dest).as_posix() for q in (dest / "cvagents").rglob("*") if q.is_file()}
    assert copied == _package_holds()
    assert {
        "cvagents/execution/tools/registry.py",
        "cvagents/ui/dashboard.py",
        "cvagents/models/scripts/evaluate_model.py",
    } <= copied


def test_sync_again_copies_nothing(synced):
    dest, _ = synced
    p = run(SYNC, "--source", str(ROOT), "--dest", str(dest))
    assert p.returncode == 0 and "(0 copied," in p.stdout


def test_sync_names_every_missing_file(tmp_path):
    src = tmp_path / "drive"
    for d in ("cvagents", "configs", "prompts", "reports", "sync"):
        shutil.copytree(ROOT / d, src / d, ignore=shutil.ignore_patterns("__pycache__"))
    (src / "configs/meeting.yaml").unlink()
    (src / "prompts/executive_team/latency_analyst.md").unlink()
    p = run(SYNC, "--source", str(src), "--dest", str(tmp_path / "dest"))
    assert p.returncode == 1
    assert "❌ Multi-Agent Configs: 1/2 — missing: configs/meeting.yaml" in p.stdout
    assert "❌ Executive Team Prompts: 5/6 — missing: prompts/executive_team/latency_analyst.md" in p.stdout
    assert "missing: README.md" in p.stdout  # not copied into the fake Drive folder
    assert "✅ Planning Team Prompts: 6/6" in p.stdout


def test_sync_without_drive_says_so(tmp_path):
    p = run(SYNC, "--source", str(tmp_path / "no_drive"), "--dest", str(tmp_path / "dest"))
    assert p.returncode == 1 and "Source folder not found" in p.stdout and "Drive mounted" in p.stdout


def test_sync_runs_by_exec_as_the_guide_does(tmp_path, monkeypatch, capsys):
    """``exec(open(...).read())`` in a Colab cell: no arguments, paths from the environment."""
    monkeypatch.setenv("CV_DRIVE_PROJECT", str(ROOT))
    monkeypatch.setenv("CV_PROJECT_DIR", str(tmp_path / "cv_project"))
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "/usr/local/lib/python3/dist-packages/ipykernel_launcher.py",
            "-f",
            "/root/.local/share/jupyter/runtime/kernel.json",
        ],
    )
    exec(SYNC.read_text(), {"__name__": "__main__"})
    out = capsys.readouterr().out
    assert "✅ Successfully synced" in out and (tmp_path / "cv_project/configs/meeting.yaml").is_file()


def test_deploy_starts_the_coordinator_from_the_synced_copy(synced, trained_artifacts, tmp_path):
    dest, _ = synced
    ws = seed(trained_artifacts, tmp_path / "workspace")
    p = run(
        DEPLOY,
        "--project",
        str(dest),
        "--workspace",
        str(ws),
        "--provider",
        "offline",
        "--meetings",
        "1",
        "--time-scale",
        "6000",
        timeout=300,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # as a terminal shows it: the banners (stdout) and the run's log (stderr)
    )
    assert p.returncode == 0, p.stdout[-3000:]
    out = p.stdout
    for line in (
        "🚀 DEPLOYING UPDATED AUTONOMOUS SYSTEM",
        "✅ Files updated",
        "✅ Coordinator initialized",
        "✅ All 12 agents active",
        "💓 Heartbeat system started",
        "Meeting complete!",
        "HEARTBEAT CYCLE #1",
        "🏁 Run finished",
    ):
        assert line in out, line
    assert out.index("💓 Heartbeat system started") < out.index("Meeting complete!")
    assert list((ws / "reports/planning").glob("actions_meeting_*.json"))
    assert json.loads(next((ws / "sessions").glob("session_*/session.json")).read_text())["status"] == "finished"


def test_deploy_reports_a_broken_config(synced, tmp_path):
    dest, _ = synced
    broken = tmp_path / "project"
    shutil.copytree(dest, broken)
    cfg = broken / "configs/meeting.yaml"
    cfg.write_text(cfg.read_text().replace("provider: anthropic", "provider: nobody", 1))
    p = run(
        DEPLOY,
        "--project",
        str(broken),
        "--workspace",
        str(tmp_path / "ws"),
        "--provider",
        "offline",
        "--meetings",
        "1",
    )
    assert p.returncode == 2 and "meeting.yaml" in p.stderr and "provider" in p.stderr
    assert not (tmp_path / "ws").exists()
