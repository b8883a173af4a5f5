"""The clock's rule: simulated time runs ×time_scale only while the coordinator waits, ×1 while
a step works; so a schedule holds at any scale however long the work takes."""

from datetime import UTC, datetime, timedelta

import pytest
from fake_time import FakeRealTime

from cvagents.clock import Clock, ManualClock, sim_label

START = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


def clock(scale=600.0):
    fake = FakeRealTime()
    return Clock(scale, START, real=fake), fake


def test_work_counts_at_its_real_duration_whatever_the_scale():
    c, fake = clock(600)
    fake.work(18)  # a training of 18 s
    assert c.now() == START + timedelta(seconds=18)  # not 3 simulated hours


def test_a_wait_is_accelerated_and_ends_exactly_when_asked():
    c, fake = clock(600)
    fake.work(12)
    due = START + timedelta(minutes=30)
    assert c.sleep_until(due)
    assert fake.waits == [pytest.approx((30 * 60 - 12) / 600)]  # the rest of the 30 minutes, at 600×
    assert c.now() == due
    fake.work(3)
    assert c.now() == due + timedelta(seconds=3)  # after the wait, work is ×1 again


def test_a_wait_for_a_time_already_past_returns_at_once():
    c, fake = clock(600)
    fake.work(400)
    assert c.sleep_until(START + timedelta(minutes=5))
    assert fake.waits == []
    assert c.now() == START + timedelta(seconds=400)  # the time is not turned back


def test_a_wait_woken_early_goes_on_waiting_the_rest():
    c, fake = clock(60)
    woken = []

    def early(seconds):  # the first wait returns after a third of its time (a spurious wake-up)
        if not woken:
            woken.append(seconds)
            fake.t -= seconds * 2 / 3

    fake.on_wait = early
    assert c.sleep_until(START + timedelta(minutes=6))
    assert sum(fake.waits) == pytest.approx(6 + 4)  # 6 s asked, 2 s passed, then the 4 s left
    assert c.now() == START + timedelta(minutes=6)


def test_stop_wakes_the_wait_and_keeps_the_simulated_time_it_covered():
    c, fake = clock(600)

    def ctrl_c(seconds):
        fake.t += 1  # one real second into a 3-second wait
        c.stop()

    fake.on_wait = ctrl_c
    assert not c.sleep_until(START + timedelta(minutes=30))
    assert c.now() == START + timedelta(minutes=10)  # 1 s at 600×
    assert not c.sleep_until(START + timedelta(minutes=40))  # stopped stays stopped
    assert not c.sleep_until(c.now())  # even for a step due at once: Ctrl-C ends the run there


def test_jump_to_continues_from_where_the_journal_ended():
    c, fake = clock(600)
    fake.work(50)
    later = START + timedelta(hours=7)
    c.jump_to(later)
    assert c.now() == later
    fake.work(2)
    assert c.now() == later + timedelta(seconds=2)


def test_the_manual_clock_moves_only_in_waits():
    c = ManualClock(START)
    assert c.now() == START
    assert c.sleep_until(START + timedelta(minutes=5))
    assert c.now() == START + timedelta(minutes=5)
    c.stop()
    assert not c.sleep_until(START + timedelta(minutes=10))
    assert c.now() == START + timedelta(minutes=5)


def test_the_real_clock_waits_on_the_system_clock():
    c = Clock(1e6)  # an hour in 3.6 ms: the default source, without a timing assert
    t = c.now()
    assert c.sleep_until(t + timedelta(hours=1))
    assert c.now() >= t + timedelta(hours=1)


def test_a_scale_of_zero_or_less_is_refused():
    with pytest.raises(ValueError):
        Clock(0)


def test_simulated_times_are_labelled():
    assert sim_label(datetime(2026, 11, 30, 18, 44, 19)) == "sim 18:44:19"
