"""The run's clock: simulated time that runs ``time_scale`` times faster than the wall clock.

``--time-scale 600`` makes a 30-minute planning interval last 3 real seconds. Every schedule
decision is taken in simulated time; only ``sleep_until`` touches real time, and a ``stop``
event wakes it at once (Ctrl-C stops cleanly after the current step).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(self, time_scale: float = 1.0, start: datetime | None = None):
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.time_scale = time_scale
        self._start_sim = start or datetime.now(UTC).replace(microsecond=0)
        self._start_real = time.monotonic()
        self.stop_event = threading.Event()

    def now(self) -> datetime:
        elapsed = (time.monotonic() - self._start_real) * self.time_scale
        return self._start_sim + timedelta(seconds=elapsed)

    def sleep_until(self, when: datetime) -> bool:
        """Sleep until simulated time ``when``; False if stopped first."""
        while not self.stop_event.is_set():
            remaining = (when - self.now()).total_seconds() / self.time_scale
            if remaining <= 0:
                return True
            self.stop_event.wait(min(remaining, 0.5))
        return False

    def stop(self) -> None:
        self.stop_event.set()

    def jump_to(self, when: datetime) -> None:
        """Continue simulated time from ``when`` (a resumed run picks up where the journal ended)."""
        self._start_sim = when
        self._start_real = time.monotonic()


class ManualClock(Clock):
    """Simulated time that moves only when the loop sleeps: steps take no simulated time, so a
    schedule runs the same way however busy the machine is (tests, benchmarks)."""

    def __init__(self, start: datetime | None = None):
        super().__init__(1.0, start)
        self._now = self._start_sim

    def now(self) -> datetime:
        return self._now

    def sleep_until(self, when: datetime) -> bool:
        if self.stop_event.is_set():
            return False
        self._now = max(self._now, when)
        return True

    def jump_to(self, when: datetime) -> None:
        self._now = when


class Stopwatch:
    """Real elapsed time for durations and latencies (never simulated): the one place that
    reads the performance counter, so a test can swap it and no module times itself by hand."""

    __slots__ = ("_t0",)

    def __init__(self) -> None:
        self._t0 = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since the stopwatch was started (or last restarted)."""
        return time.perf_counter() - self._t0

    def restart(self) -> float:
        """The elapsed seconds, and start again from now."""
        now = time.perf_counter()
        dt, self._t0 = now - self._t0, now
        return dt


def stopwatch() -> Stopwatch:
    """A started stopwatch: ``sw = stopwatch(); ...; sw.elapsed()``."""
    return Stopwatch()


def stamp(t: datetime) -> str:
    """The guide's id stamp: ``20251013_200000``."""
    return t.strftime("%Y%m%d_%H%M%S")
