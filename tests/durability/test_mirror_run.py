"""The mirror during a run: a target that disappears and comes back never stops the run and is
caught up; a run killed on one machine is resumed on another from the mirror alone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from resume_helpers import coordinator, records, seed
from waiting import wait_for

from cvagents.durability.journal import Journal
from cvagents.durability.mirror import MANIFEST_NAME
from cvagents.durability.restore import restore
from cvagents.runner import mirror_to_restore
from cvagents.ui.status import collect_status, format_status

LAUNCHER = Path(__file__).resolve().parents[1] / "det_run.py"
SESSION = "20250101_000000_00000a"  # fixed, in the format the CLI accepts


def _mirrored_journal(target: Path, tmp: Path, session="t") -> list:
    dest = tmp / "restored"
    restore(target, {"sessions": dest})
    j = Journal.open(dest / f"session_{session}" / "trajectories", read_only=True)
    try:
        return [(r.seq, r.kind) for r in j.records()]
    finally:
        j.close()


@pytest.mark.parametrize("comes_back", ["same folder", "empty folder"])
def test_a_target_that_disappears_and_comes_back(tmp_path, comes_back):
    ws, target = seed(tmp_path / "ws"), tmp_path / "drive" / "mirror"
    target.parent.mkdir()
    c = coordinator(ws, 2, mirror_to=str(target))
    c.mirror.interval_s = 0.05
    away = tmp_path / "drive" / "away"
    log = []

    def on_step(step, rec):
        st = c.mirror.status()
        if step == "meeting" and len(log) == 0:  # after the first meeting: Drive unmounted
            assert wait_for(lambda: c.mirror.status()["last_success"] is not None)
            target.rename(away)
            assert not c.mirror.flush().ok
            log.append("gone")
        elif step == "heartbeat" and log == ["gone"]:
            assert st["consecutive_failures"] >= 1 and "missing" in (st["last_error"] or "")
            session = json.loads((c.session_dir / "session.json").read_text())
            assert session["mirror"]["consecutive_failures"] >= 1  # status shows it while the run goes on
            if comes_back == "same folder":
                away.rename(target)
            else:
                target.mkdir()
            log.append("back")

    c.on_step = on_step
    result = c.run()
    c.close()
    assert result["status"] == "finished" and log == ["gone", "back"]
    session = json.loads((c.session_dir / "session.json").read_text())
    assert session["mirror"]["last_success"] and session["mirror"]["consecutive_failures"] == 0
    assert session["mirror"]["last_error"]  # the outage stays on record
    shown = format_status(collect_status(ws))
    assert f"🪞 Mirror → {target}: last success" in shown and "last error" in shown
    # the mirror caught up: its journal is the whole local journal, its reports the local ones
    assert _mirrored_journal(target, tmp_path) == [(r.seq, r.kind) for r in records(ws)]
    manifest = json.loads((target / MANIFEST_NAME).read_text())
    assert manifest["extra"]["session_id"] == "t"
    local_reports = {str(p.relative_to(ws)) for p in (ws / "reports").rglob("*") if p.is_file()}
    assert local_reports <= set(manifest["files"])
    assert "deployment/shadow/manifest.json" in manifest["files"] and "research/v1_production.pth" in manifest["files"]


def _cli(ws, *extra, crash=None):
    env = {k: v for k, v in os.environ.items() if k != "CVAGENTS_CRASH_AT"}
    if crash:
        env["CVAGENTS_CRASH_AT"] = crash
    args = [
        "run",
        "--provider",
        "offline",
        "--meetings",
        "1",
        "--manual-clock",
        "--start-time",
        "2025-01-01T00:00:00",
        "--session-id",
        SESSION,
        "--quiet",
        "--json",
        "--workspace",
        str(ws),
        *extra,
    ]
    return subprocess.run([sys.executable, str(LAUNCHER), *args], env=env, capture_output=True, text=True, timeout=300)


def test_a_run_killed_on_one_machine_resumes_from_the_mirror_alone(tmp_path, trained_artifacts):
    def seeded(ws):
        ws.mkdir(parents=True)
        for sub in ("research", "data"):
            shutil.copytree(trained_artifacts / sub, ws / sub)
        return ws

    base = seeded(tmp_path / "a" / "ws")
    assert _cli(base).returncode == 0
    vm1, drive = seeded(tmp_path / "b" / "ws"), tmp_path / "drive"
    drive.mkdir()
    killed = _cli(vm1, "--mirror-to", str(drive), crash="tool_after:replay_traffic")
    assert killed.returncode == -9
    assert (drive / MANIFEST_NAME).is_file()

    vm2 = tmp_path / "c" / "ws"  # a fresh VM: an empty workspace, only the Drive folder
    # what the notebooks ask before running: restore only an empty workspace, only from a real mirror
    assert mirror_to_restore(vm2, drive) == str(drive)
    assert mirror_to_restore(vm1, drive) is None  # the killed VM's own session is newer than its mirror
    assert mirror_to_restore(vm2, tmp_path / "empty_drive") is None and mirror_to_restore(vm2, "") is None
    resumed = _cli(vm2, "--resume-from", str(drive))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = json.loads(resumed.stdout)
    assert result["status"] == "finished" and result["session_id"] == SESSION and result["meetings"] == 1

    j = Journal.open(vm2 / "sessions" / f"session_{SESSION}" / "trajectories", read_only=True)
    recs = list(j.records())
    j.close()
    resumed_rec = [r.data for r in recs if r.kind == "session_resumed"][0]
    assert resumed_rec["from_mirror"] == str(drive)
    keys = Counter(
        (
            r.data.get("meeting_id") or r.data.get("action_id"),
            r.data["agent"],
            r.data.get("step"),
            r.data["prompt_hash"],
        )
        for r in recs
        if r.kind == "agent_response"
    )
    assert max(keys.values()) == 1
    assert Counter(r.data["meeting_id"] for r in recs if r.kind == "meeting_completed") == Counter(
        {"meeting_20250101_000000": 1}
    )
    done = Counter(r.data["action_id"] for r in recs if r.kind == "action_finished")
    assert max(done.values()) == 1
    # every deployment once, the same as the run that never crashed
    versions = lambda ws: sorted(str(p.relative_to(ws)) for p in (ws / "deployment").glob("*/versions/*/version.json"))  # noqa: E731
    assert versions(vm2) == versions(base)
    for v in versions(vm2):
        assert json.loads((vm2 / v).read_text())["action_id"] == json.loads((base / v).read_text())["action_id"]
    assert json.loads((vm2 / "reports/handoff/pending_actions.json").read_text()) == json.loads(
        (base / "reports/handoff/pending_actions.json").read_text()
    )
    names = lambda ws: sorted(p.name for p in (ws / "reports").rglob("*") if p.is_file())  # noqa: E731
    assert names(vm2) == names(base)
    # and it kept mirroring to the same Drive folder
    manifest = json.loads((drive / MANIFEST_NAME).read_text())
    assert manifest["extra"]["journal_last_seq"] >= len(recs) - 2


def test_a_finished_session_restored_on_a_new_vm_starts_a_new_session_as_on_its_own_vm(tmp_path, seeded_workspace):
    from cvagents.runner import run_system

    def run(ws, **kw):
        return run_system(
            ws, provider="offline", meetings=1, manual_clock=True, console=False, handle_sigint=False, **kw
        )

    vm1, drive = seeded_workspace, tmp_path / "drive"
    drive.mkdir()
    first = run(vm1, mirror_to=drive, session_id=SESSION, start_time="2025-01-01T00:00:00")
    assert first["status"] == "finished"

    vm2 = tmp_path / "vm2" / "ws"  # a new VM: only the Drive folder
    assert mirror_to_restore(vm2, drive) == str(drive)
    on_vm2 = run(vm2, resume_from=drive, mirror_to=tmp_path / "drive2")
    on_vm1 = run(vm1)  # the same command on the VM that ran it
    for res, ws in ((on_vm2, vm2), (on_vm1, vm1)):
        assert res["status"] == "finished" and res["session_id"] != SESSION and res["meetings"] == 1
        said = [x for x in (ws / "executive.log").read_text(encoding="utf-8").splitlines() if "🆕 New session" in x]
        assert len(said) == 1 and f"🆕 New session {res['session_id']}: the last session {SESSION} finished" in said[0]
    assert "(restored from the mirror" in (vm2 / "executive.log").read_text(encoding="utf-8")
    # the new session builds on the finished one's workspace, the same on both VMs
    for ws in (vm2, vm1):
        assert (ws / "sessions" / f"session_{SESSION}" / "session.json").is_file()
    started = [
        next(r.data for r in records(ws, res["session_id"]) if r.kind == "meeting_started")
        for ws, res in ((vm2, on_vm2), (vm1, on_vm1))
    ]
    assert started[0]["state"]["stages"] == started[1]["state"]["stages"]
    assert started[0]["state"]["stages"].get("shadow") or {}  # what the finished session deployed
