"""A new session starts its simulated clock where the workspace's last session ended, when that
is later than now: an accelerated run ends hours ahead of the wall clock, and the next session's
meetings, reports and decisions must still come after it."""

from datetime import UTC, datetime, timedelta

from cvagents.durability.session import sessions
from cvagents.runner import run_system


def test_a_second_session_starts_after_the_first_one_ended(seeded_workspace):
    later = (datetime.now(UTC) + timedelta(hours=5)).replace(microsecond=0)
    first = run_system(
        seeded_workspace, provider="offline", meetings=1, console=False, manual_clock=True, start_time=later
    )
    second = run_system(seeded_workspace, provider="offline", meetings=1, console=False, manual_clock=True)
    assert first["session_id"] != second["session_id"]
    by_id = {s["id"]: s["info"] for s in sessions(seeded_workspace / "sessions")}
    ended = datetime.fromisoformat(by_id[first["session_id"]]["updated"])
    assert ended >= later
    assert datetime.fromisoformat(by_id[second["session_id"]]["updated"]) >= ended
    meetings = sorted(p.name for p in (seeded_workspace / "reports" / "planning").glob("summary_*.md"))
    assert len(meetings) == 2  # the first session's meeting sorts first: its id is the earlier time
