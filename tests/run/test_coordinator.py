"""The schedule on the accelerated clock: adaptive timing, meeting limits, clean stop."""

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from fake_time import FakeRealTime
from fakes import ScriptedProvider, synthesis_json

from cvagents.clock import Clock, ManualClock
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
            "success_criteria": "check_files reports 0 missing files",
        }
        for i in range(n)
    ]
    return ScriptedProvider.as_offline().always(synthesis_json(actions), purpose="synthesis")


def run(tmp_path, n_actions, meetings=2, clock=None, slow=None):
    """``slow(c)``: makes the coordinator's steps take (fake) real time before it runs."""
    settings = Settings(__import__("pathlib").Path(__file__).resolve().parents[2])
    teams = build_teams(settings, lambda name, cfg: plan_of(n_actions))
    c = Coordinator(
        settings, tmp_path / "ws", RunOptions(meetings=meetings, console=False), teams, clock=clock or ManualClock()
    )
    if slow is not None:
        slow(c)
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


def _slow_steps(fake, meeting_s, action_s):
    """Each meeting takes ``meeting_s`` and each action ``action_s`` real seconds, inside the step."""

    def slow(c):
        carry_out, make_meeting = c.executive.carry_out, c._meeting

        def slow_action(*a, **k):
            fake.work(action_s)
            return carry_out(*a, **k)

        def slow_meeting(memo):
            m = make_meeting(memo)
            hold = m.hold

            def slow_hold(*a, **k):
                fake.work(meeting_s)
                return hold(*a, **k)

            m.hold = slow_hold
            return m

        c.executive.carry_out = slow_action
        c._meeting = slow_meeting

    return slow


def _steps(recs):
    return [(r.kind, r.data.get("number") or r.data.get("heartbeat")) for r in recs if r.kind.endswith("_started")]


def test_steps_longer_than_a_heartbeat_at_a_high_scale_still_run_every_planned_step(tmp_path):
    # at 6000x a 5-minute heartbeat interval is 0.05 real seconds; each action takes 20 s and
    # each meeting 40 s: under a clock that scaled the work too, that would be 33 simulated
    # hours per action, every meeting overdue at once and heartbeats skipped
    fake = FakeRealTime()
    start = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    slow = _slow_steps(fake, meeting_s=40, action_s=20)
    result, recs, c = run(tmp_path / "slow", 7, meetings=3, clock=Clock(6000, start, real=fake), slow=slow)
    manual, manual_recs, _ = run(tmp_path / "manual", 7, meetings=3)

    assert _steps(recs) == _steps(manual_recs)  # every planned meeting and heartbeat, in order
    assert (result["meetings"], result["heartbeats"]) == (manual["meetings"], manual["heartbeats"]) == (3, 9)
    assert fake.waits and max(fake.waits) <= 5 * 60 / 6000  # the waits ran accelerated
    # the work counts at ×1: a heartbeat of three 20-second actions lasts one simulated minute
    started = {r.data["heartbeat"]: r for r in recs if r.kind == "heartbeat_started"}
    for r in recs:
        if r.kind == "checkpoint" and r.data["step"] == "heartbeat":
            n = r.data["heartbeats"]
            actions = sum(1 for a in recs if a.kind == "action_finished" and a.data["heartbeat"] == n)
            took = datetime.fromisoformat(r.data["time"]) - datetime.fromisoformat(started[n].data["time"])
            assert took == timedelta(seconds=20 * actions)
    # and the waits are the schedule's: each step starts when the checkpoint before it said, or at
    # once when that time has passed during the work
    due = None
    for r in recs:
        if r.kind == "checkpoint":
            sched = r.data["schedule"]
            planned = min(datetime.fromisoformat(t) for t in (sched["next_meeting"], sched["next_heartbeat"]) if t)
            due = max(planned, datetime.fromisoformat(r.data["time"]))
        elif r.kind in ("meeting_started", "heartbeat_started") and due is not None:
            assert datetime.fromisoformat(r.data["time"]) == due, r.kind


def test_simulated_times_are_marked_beside_the_wall_clock(tmp_path):
    result, recs, c = run(tmp_path, n_actions=2, meetings=2)
    log = c.ws.log_file.read_text()
    first = next(r.data for r in recs if r.kind == "meeting_started")
    sim = datetime.fromisoformat(first["time"])
    assert f"({first['meeting_id']} = sim start)" in log
    assert f"HEARTBEAT CYCLE #1: {sim:%Y-%m-%d %H:%M:%S} (simulated)" in log
    timing = next(line for line in log.splitlines() if "⏱ Timing" in line)
    assert f"next meeting at sim {sim + timedelta(minutes=10):%H:%M:%S} (was sim " in timing
    summary = (c.ws.planning_dir / f"summary_{first['meeting_id']}.md").read_text()
    assert f"- Time: {sim:%Y-%m-%dT%H:%M:%S} (simulated; the meeting id is this start time)" in summary
