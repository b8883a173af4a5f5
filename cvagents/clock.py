"""The run's clock: simulated time, accelerated only while the coordinator waits.

``--time-scale 600`` makes the wait for a meeting 30 simulated minutes away last 3 real
seconds; the work of a step (a meeting, a heartbeat's tools) takes its own real time and
counts at ×1. So "a meeting every 30 minutes, a heartbeat every 5" holds at any scale, and how
many meetings and heartbeats a run holds does not depend on how busy the machine is (unless one
step outlasts a whole heartbeat interval of real time). Every schedule decision is taken in
simulated time; only ``sleep_until`` waits, and a ``stop`` event wakes it at once (Ctrl-C
stops cleanly after the current step).

The real-time source is a seam: ``RealTime`` reads ``time.monotonic`` and waits on the stop
event; a test gives a fake whose ``wait`` advances its own counter.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "ManualClock", "RealTime", "Stopwatch", "sim_label", "stamp", "stopwatch"]


class RealTime(Protocol):
    """Where the clock reads real time and how it waits for it."""

    def monotonic(self) -> float: ...

    def wait(self, seconds: float, stop: threading.Event) -> None:
        """Return after ``seconds`` of real time, or as soon as ``stop`` is set."""


class _SystemTime:
    monotonic = staticmethod(time.monotonic)

    @staticmethod
    def wait(seconds: float, stop: threading.Event) -> None:
        stop.wait(seconds)


class _NoTime:
    """Real time that passes only in waits, at once: steps take no time at all."""

    def __init__(self) -> None:
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    def wait(self, seconds: float, stop: threading.Event) -> None:
        self.t += seconds


class Clock:
    """Simulated time = where the last wait ended + the real time since (×1); a wait for
    simulated time ``when`` lasts ``(when - now) / time_scale`` real seconds and ends at ``when``."""

    def __init__(self, time_scale: float = 1.0, start: datetime | None = None, *, real: RealTime | None = None):
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.time_scale = time_scale
        self._real: RealTime = real or _SystemTime()
        self.stop_event = threading.Event()
        self._anchor(start or datetime.now(UTC).replace(microsecond=0))

    def _anchor(self, sim: datetime) -> None:
        self._sim0, self._real0 = sim, self._real.monotonic()

    def now(self) -> datetime:
        return self._sim0 + timedelta(seconds=self._real.monotonic() - self._real0)

    def sleep_until(self, when: datetime) -> bool:
        """Wait until simulated time ``when`` (at ×``time_scale``); False if stopped first, with
        the simulated time the wait covered."""
        if self.stop_event.is_set():
            return False
        start = self.now()
        if when <= start:
            return True
        real_total = (when - start).total_seconds() / self.time_scale
        t0 = self._real.monotonic()
        while not self.stop_event.is_set():
            left = real_total - (self._real.monotonic() - t0)
            if left <= 1e-6:
                self._anchor(when)
                return True
            self._real.wait(left, self.stop_event)
        waited = min(real_total, self._real.monotonic() - t0)
        self._anchor(start + timedelta(seconds=waited * self.time_scale))
        return False

    def stop(self) -> None:
        self.stop_event.set()

    def jump_to(self, when: datetime) -> None:
        """Continue simulated time from ``when`` (a resumed run picks up where the journal ended)."""
        self._anchor(when)


class ManualClock(Clock):
    """Simulated time that moves only when the loop sleeps: steps take no simulated time, so a
    schedule runs the same way however busy the machine is (tests, benchmarks)."""

    def __init__(self, start: datetime | None = None):
        super().__init__(1.0, start, real=_NoTime())


def sim_label(t: datetime) -> str:
    """A simulated time as the log shows it beside the wall-clock stamp: ``sim 18:44:19``."""
    return f"sim {t.strftime('%H:%M:%S')}"


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
