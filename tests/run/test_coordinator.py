"""The schedule on the accelerated clock: adaptive timing, meeting limits, clean stop."""

import json
import signal
import subprocess
import sys
import time
from datetime import datetime

from fakes import ScriptedProvider, synthesis_json

from cvagents.clock import ManualClock
from cvagents.config import Settings
from cvagents.durability.journal import Journal
from cvagents.planning.team import build_teams
from cvagents.run.coordinator import Coordinator, RunOptions


def plan_of(n):
    """The offline provider, except that the moderator plans ``n`` file checks."""
    actions = [
        {
            "action": f"Check that the essential files exist (check {i}).",
            "owner": "infra_guardian",
            "priority": "low",
            "estimated_duration": "1min",
            "success_criteria": "reported",
        }
        for i in range(n)
    ]
    return ScriptedProvider.as_offline().always(synthesis_json(actions), purpose="synthesis")


def run(tmp_path, n_actions, meetings=2):
    settings = Settings(__import__("pathlib").Path(__file__).resolve().parents[2])
    teams = build_teams(settings, lambda name, cfg: plan_of(n_actions))
    c = Coordinator(settings, tmp_path / "ws", RunOptions(meetings=meetings, console=False), teams, clock=ManualClock())
    try:
        result = c.run()
    finally:
        c.close()
    j = Journal.open(c.session_dir / "trajectories", read_only=True)
    recs = list(j.records())
    j.close()
    return result, recs, c


def _times(recs, kind):
    return [datetime.fromisoformat(r.data["time"]) for r in recs if r.kind == kind]


def test_drained_handoff_brings_the_meeting_forward(tmp_path):
    result, recs, c = run(tmp_path, n_actions=2)
    assert result["meetings"] == 2
    timing = [r.data for r in recs if r.kind == "timing_changed"]
    assert timing and timing[0]["reason"] == "handoff drained"
    t1, t2 = _times(recs, "meeting_started")
    gap = (t2 - t1).total_seconds() / 60
    assert gap == 10  # min_planning_interval_minutes, not the full 30
    assert "⏱ Timing" in c.ws.log_file.read_text() and "handoff drained" in c.ws.log_file.read_text()


def test_backlog_brings_heartbeats_closer_and_may_delay_the_meeting(tmp_path):
    result, recs, c = run(tmp_path, n_actions=20, meetings=1)
    timing = [r.data for r in recs if r.kind == "timing_changed"]
    assert timing and "actions pending" in timing[0]["reason"]
    assert timing[0]["heartbeat_minutes"] == 2.5  # half of 5, above the 2-minute floor
    hb = [datetime.fromisoformat(r.data["timestamp"]) for r in recs if r.kind == "heartbeat_completed"]
    gaps = [(b - a).total_seconds() / 60 for a, b in zip(hb, hb[1:])]
    assert min(gaps) < 3
    # 20 actions at 3 per heartbeat: all carried out before the phase ended
    done = [r for r in recs if r.kind == "action_finished"]
    assert len(done) == 20
    meeting_at = _times(recs, "meeting_started")[0].replace(tzinfo=None)
    assert (hb[-1] - meeting_at).total_seconds() / 60 <= 60  # never beyond max_planning_interval


def test_each_meeting_once_and_every_action_once(tmp_path):
    result, recs, c = run(tmp_path, n_actions=4, meetings=3)
    assert len([r for r in recs if r.kind == "meeting_completed"]) == 3
    keys = [r.data["action_id"] for r in recs if r.kind == "action_finished"]
    assert len(keys) == len(set(keys)) == 12


def test_ctrl_c_stops_cleanly_after_the_current_step(seeded_workspace):
    ws = seeded_workspace
    p = subprocess.Popen(
        [sys.executable, "-m", "cvagents", "run", "--provider", "offline", "--time-scale", "1", "--workspace", str(ws)]
        + ["--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    log = ws / "executive.log"
    while time.time() < deadline and not (log.exists() and "HEARTBEAT" in log.read_text()):
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 130, err[-2000:]  # interrupted, as a shell reports Ctrl-C
    assert json.loads(out)["status"] == "stopped"
    session = json.loads(next((ws / "sessions").glob("session_*/session.json")).read_text())
    assert session["status"] == "stopped"


def test_the_result_reads_plainly_when_printed(tmp_path):
    result, recs, c = run(tmp_path, n_actions=1, meetings=1)
    assert repr(result["status"]) == "'finished'"  # notebooks print the result dict
