"""A slow model (a local server on a CPU: minutes per answer) does not push the simulated
schedule: a call counts at its real duration even at ×600, and no meeting is skipped."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fake_time import FakeRealTime
from fakes import OFFLINE, ScriptedProvider

from cvagents.clock import Clock
from cvagents.config import Settings
from cvagents.durability.journal import Journal
from cvagents.planning.team import build_teams
from cvagents.run.coordinator import Coordinator, RunOptions

CALL_S = 150  # real seconds per answer: a 1.5B model on two CPU cores


def test_a_slow_provider_call_counts_at_its_real_duration_and_skips_no_meeting(seeded_workspace):
    fake = FakeRealTime()
    start = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)

    def slow(request):
        fake.work(CALL_S)
        return OFFLINE

    model = ScriptedProvider.as_offline().always(slow)
    settings = Settings(Path(__file__).resolve().parents[2])
    teams = build_teams(settings, lambda name, cfg: model)
    c = Coordinator(
        settings, seeded_workspace, RunOptions(meetings=2, console=False), teams, clock=Clock(600, start, real=fake)
    )
    try:
        result = c.run()
    finally:
        c.close()
    j = Journal.open(c.session_dir / "trajectories", read_only=True)
    recs = list(j.records())
    j.close()

    assert (result["status"], result["meetings"]) == ("finished", 2)
    assert [r.data["number"] for r in recs if r.kind == "meeting_completed"] == [1, 2]  # none skipped
    assert result["heartbeats"] >= 2  # each meeting's execution phase ran
    assert fake.waits and max(fake.waits) <= 30 * 60 / 600  # only the waits were accelerated
    # each meeting lasted exactly its calls' real time in simulated time: ×1, not ×600
    meeting = None
    for r in recs:
        if r.kind == "meeting_started":
            meeting = r.data
        elif r.kind == "checkpoint" and r.data["step"] == "meeting":
            calls = sum(
                1 for a in recs if a.kind == "agent_response" and a.data.get("meeting_id") == meeting["meeting_id"]
            )
            assert calls >= 6  # five contributions and the synthesis
            took = datetime.fromisoformat(r.data["time"]) - datetime.fromisoformat(meeting["time"])
            assert took == timedelta(seconds=CALL_S * calls)
