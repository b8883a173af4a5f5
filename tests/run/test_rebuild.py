"""``cvagents rebuild-reports``: everything under reports/ comes back from the journal alone."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest
import yaml
from resume_helpers import ROOT, coordinator, records, report_files, run, seed, settings

from cvagents.clock import ManualClock
from cvagents.config import Settings
from cvagents.durability.journal import Journal
from cvagents.offline.provider import OfflineProvider
from cvagents.planning.team import build_teams
from cvagents.rollout import decisions
from cvagents.run.coordinator import Coordinator, RunOptions
from cvagents.run.rebuild import rebuild_reports


@pytest.fixture(autouse=True)
def fixed_durations(monkeypatch):
    monkeypatch.setattr(time, "perf_counter", lambda: 0.0)


def _wipe(ws):
    """Everything rebuild-reports rebuilds (reports/rollout/ is the controller's own record)."""
    for d in ("planning", "execution"):
        shutil.rmtree(ws / "reports" / d)
    for f in ("rollout_state.json", "costs.json", "handoff/pending_actions.json"):
        (ws / "reports" / f).unlink()


def test_rebuilt_reports_equal_the_ones_the_run_wrote(tmp_path):
    ws = seed(tmp_path / "ws")
    run(ws, 2)
    written = report_files(ws)
    raw = {p: (ws / p).read_bytes() for p in written if p.startswith(("reports/planning", "reports/execution"))}
    _wipe(ws)
    counts = rebuild_reports(ws, "t", settings=settings())
    assert counts["meetings"] == 2 and counts["heartbeats"] == 4 and counts["state"] == 1
    assert report_files(ws) == written
    # written from the journaled dicts, so byte for byte the same files
    assert {p: (ws / p).read_bytes() for p in raw} == raw


def test_rebuild_reports_command(tmp_path):
    ws = seed(tmp_path / "ws")
    run(ws, 1)
    written = report_files(ws)
    _wipe(ws)
    p = subprocess.run(
        [sys.executable, "-m", "cvagents", "rebuild-reports", "--workspace", str(ws), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert '"session_id": "t"' in p.stdout
    assert report_files(ws) == written
    bad = subprocess.run(
        [sys.executable, "-m", "cvagents", "rebuild-reports", "--workspace", str(tmp_path / "empty")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "no session" in bad.stderr


def _small_segments(tmp_path, keep_segments, keep_archived):
    cfg = tmp_path / "coordination.yaml"
    c = yaml.safe_load((ROOT / "configs" / "autonomous_coordination.yaml").read_text())
    c["journal"] = {
        "segment_max_bytes": 20_000,
        "fsync": False,
        "keep_segments": keep_segments,
        "keep_archived_segments": keep_archived,
    }
    cfg.write_text(yaml.safe_dump(c, sort_keys=False))
    return settings(cfg)


def test_rebuild_reads_archived_segments(tmp_path):
    s = _small_segments(tmp_path, keep_segments=1, keep_archived=None)
    ws = seed(tmp_path / "ws")
    run(ws, 3, s=s)
    j = Journal.open(ws / "sessions" / "session_t" / "trajectories", read_only=True)
    archived = j.archived_segments()
    j.close()
    assert len(archived) >= 3  # the retention rule gzipped them into archive/
    written = report_files(ws)
    _wipe(ws)
    rebuild_reports(ws, "t", settings=s)
    assert report_files(ws) == written


def test_retention_bounds_the_journal_and_resume_needs_no_old_segment(tmp_path):
    s = _small_segments(tmp_path, keep_segments=1, keep_archived=1)
    ws = seed(tmp_path / "ws")
    run(ws, 3, s=s)
    sdir = ws / "sessions" / "session_t"
    # applied after every checkpoint: keep 1 closed + the open one (+ one the records after the last checkpoint may have opened)
    assert (
        len(list((sdir / "archive").iterdir())) == 1 and len(list((sdir / "trajectories").glob("segment_*.jsonl"))) <= 3
    )
    result, _ = run(ws, 4, s=s)  # resumes from the last checkpoint, which is never pruned
    assert result["status"] == "finished" and result["meetings"] == 4
    counts = rebuild_reports(ws, "t", settings=s)
    assert counts["pruned_through_seq"] > 0 and counts["first_seq"] > 1  # rebuilt what the journal still holds


def test_rebuild_beside_a_live_run(tmp_path):
    ws = seed(tmp_path / "ws")
    c = coordinator(ws, 1)
    seen = {}
    c.on_step = lambda step, rec: (
        seen.setdefault("counts", rebuild_reports(ws, "t", settings=settings())) if step == "heartbeat" else None
    )
    c.run()
    c.close()
    assert seen["counts"]["meetings"] == 1  # read-only: the live writer keeps its lock
    assert any(r.kind == "session_finished" for r in records(ws))


def _every_report(ws) -> dict[str, bytes]:
    return {str(p.relative_to(ws)): p.read_bytes() for p in sorted((ws / "reports").rglob("*")) if p.is_file()}


def test_every_report_of_a_run_with_an_automatic_rollback_comes_back_byte_for_byte(tmp_path, degraded_artifacts):
    """The degraded candidate is deployed to shadow and rolled back by the controller: the
    decisions log, the controller's line in the deployments log, controller.json and every other
    file under reports/ are rendered from journaled records, so they come back from the journal."""
    ws = tmp_path / "ws"
    shutil.copytree(degraded_artifacts / "data", ws / "data")
    shutil.copytree(degraded_artifacts / "research", ws / "research")
    (ws / "research" / "v1_degraded.pth").rename(ws / "research" / "v1_production.pth")
    s = Settings(ROOT)
    teams = build_teams(s, lambda name, cfg: OfflineProvider())
    c = Coordinator(s, ws, RunOptions(meetings=3, console=False, session_id="rb"), teams, clock=ManualClock())
    try:
        assert c.run()["status"] == "finished"
    finally:
        c.close()
    rollbacks = [d for d in decisions.read(c.ws) if d["kind"] == "rollback" and d["source"] == "controller"]
    assert rollbacks, "the controller was to roll the degraded candidate back"
    written = _every_report(ws)
    logs = "".join(v.decode() for k, v in written.items() if "/deployments_" in k)
    assert "rollback_model stage=shadow action=rollout_controller ✅" in logs
    assert {"reports/rollout/decisions.jsonl", "reports/rollout/controller.json", "reports/costs.json"} <= set(written)

    shutil.rmtree(ws / "reports")
    counts = rebuild_reports(ws, settings=s)
    assert counts["decisions"] == len(decisions.read(c.ws)) and counts["session_id"] == "rb"
    assert _every_report(ws) == written

    shutil.rmtree(ws / "reports")
    p = subprocess.run(
        [sys.executable, "-m", "cvagents", "rebuild-reports", "--workspace", str(ws)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert _every_report(ws) == written
