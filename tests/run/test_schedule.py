"""Adaptive timing as a pure function: no coordinator, no clock, just the schedule and the config."""

from datetime import UTC, datetime, timedelta

import pytest

from cvagents.config import AdaptiveTiming
from cvagents.config import Schedule as ScheduleConfig
from cvagents.run import schedule
from cvagents.run.schedule import Schedule

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)  # the last meeting
CFG = ScheduleConfig()  # a meeting every 30 min, heartbeats every 5, 3 actions each; adaptive 10..60 min, >= 2 min


def minutes(m: float) -> datetime:
    return T0 + timedelta(minutes=m)


def after_meeting() -> Schedule:
    return schedule.after_meeting(T0, CFG)


def test_after_a_meeting_the_first_heartbeat_is_at_once_and_the_next_meeting_an_interval_later():
    s = after_meeting()
    assert (s.t_meeting, s.t_heartbeat, s.hb_minutes, s.last_meeting) == (minutes(30), T0, 5, T0)
    assert not s.meeting_next and s.due == T0
    assert Schedule.from_dict(s.as_dict()) == s


@pytest.mark.parametrize("now, meeting", [(2, 10), (5, 10), (10, 10), (20, 20)])
def test_a_drained_handoff_brings_the_meeting_forward_but_not_before_the_minimum_interval(now, meeting):
    new, change = schedule.adapt(after_meeting(), CFG, 0, minutes(now))
    assert new.t_meeting == minutes(meeting)  # min_planning_interval_minutes = 10 after the last meeting
    assert change == {
        "heartbeat_minutes": 5.0,
        "next_meeting": minutes(meeting).isoformat(),
        "was": minutes(30).isoformat(),
        "reason": "handoff drained",
    }


@pytest.mark.parametrize("now", [0, 3, 7, 9.5, 12, 26, 29, 30])
def test_the_next_heartbeat_never_lands_after_the_meeting_when_the_handoff_is_drained(now):
    for cfg in (CFG, ScheduleConfig(adaptive_timing=AdaptiveTiming(enabled=False))):
        new, _ = schedule.adapt(after_meeting(), cfg, 0, minutes(now))
        assert new.t_heartbeat is not None and new.t_heartbeat <= new.t_meeting


def test_a_backlog_halves_the_heartbeat_without_moving_a_meeting_it_fits_before():
    # 4 heartbeats left before the meeting, 12 actions fit; 20 at 2.5-minute heartbeats take 17.5 min
    new, change = schedule.adapt(after_meeting(), CFG, 20, minutes(5))
    assert new.hb_minutes == 2.5 and new.t_heartbeat == minutes(7.5) and new.t_meeting == minutes(30)
    assert change["heartbeat_minutes"] == 2.5 and change["reason"] == "20 actions pending, 12 fit before the meeting"


@pytest.mark.parametrize("remaining, meeting", [(40, 42.5), (100, 60)])
def test_a_backlog_may_delay_the_meeting_within_the_maximum_interval(remaining, meeting):
    new, change = schedule.adapt(after_meeting(), CFG, remaining, minutes(5))
    assert new.hb_minutes == 2.5
    assert new.t_meeting == minutes(meeting)  # never beyond max_planning_interval_minutes = 60
    assert change["next_meeting"] == minutes(meeting).isoformat() and change["was"] == minutes(30).isoformat()


@pytest.mark.parametrize("remaining", [1, 2, 3, 4, 7])
def test_a_meeting_come_due_waits_for_the_heartbeats_its_backlog_needs(remaining):
    # the first heartbeat took the whole interval (a long evaluation at --time-scale 600): the
    # actions it left still run before the meeting (a tie goes to the meeting), within the maximum
    s, now = after_meeting(), minutes(30)
    while remaining > 0:
        s, _ = schedule.adapt(s, CFG, remaining, now)
        assert not s.meeting_next and s.t_heartbeat is not None
        now, remaining = s.t_heartbeat, remaining - CFG.actions_per_heartbeat
    assert s.t_meeting <= minutes(60)


def test_the_heartbeat_never_drops_below_its_minimum():
    cfg = ScheduleConfig(heartbeat_minutes=3, adaptive_timing=AdaptiveTiming(min_heartbeat_minutes=2))
    new, _ = schedule.adapt(schedule.after_meeting(T0, cfg), cfg, 50, minutes(3))
    assert new.hb_minutes == 2


def test_no_change_when_nothing_calls_for_one():
    s = after_meeting()
    for remaining, now in [(1, 5), (12, 5), (3, 20)]:
        new, change = schedule.adapt(s, CFG, remaining, minutes(now))
        assert change is None
        assert (new.t_meeting, new.hb_minutes, new.last_meeting) == (s.t_meeting, s.hb_minutes, s.last_meeting)
        assert new.t_heartbeat == minutes(now + 5)
    disabled = ScheduleConfig(adaptive_timing=AdaptiveTiming(enabled=False))
    assert schedule.adapt(s, disabled, 0, minutes(5))[1] is None
    assert schedule.adapt(s, disabled, 100, minutes(5))[1] is None
    before_any_meeting = schedule.start(T0, CFG)
    assert schedule.adapt(before_any_meeting, CFG, 0, T0)[1] is None


def test_a_cleared_backlog_restores_the_normal_heartbeat():
    fast, _ = schedule.adapt(after_meeting(), CFG, 20, minutes(5))
    new, change = schedule.adapt(fast, CFG, 1, minutes(7.5))
    assert new.hb_minutes == 5 and change is not None and change["reason"] == "backlog cleared"


def test_adapt_leaves_the_schedule_it_was_given_unchanged():
    s = after_meeting()
    schedule.adapt(s, CFG, 100, minutes(5))
    assert s == after_meeting()


def test_the_change_reads_as_one_log_line():
    _, change = schedule.adapt(after_meeting(), CFG, 0, minutes(5))
    assert (
        schedule.describe_change(change)
        == "heartbeat every 5.0 min, next meeting at sim 08:10:00 (was sim 08:30:00): handoff drained"
    )
