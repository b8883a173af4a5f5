"""A fake real-time source for ``cvagents.clock.Clock(real=...)``: real seconds pass only when a
test says work was done (``work``) or when the clock waits, so the clock's rule is tested
without sleeping and without timing asserts."""

from __future__ import annotations

import threading


class FakeRealTime:
    def __init__(self, t: float = 1000.0):
        self.t = t
        self.waits: list[float] = []  # every wait the clock asked for, in real seconds
        self.on_wait = None  # called with the seconds before the time moves (e.g. to press Ctrl-C)

    def monotonic(self) -> float:
        return self.t

    def wait(self, seconds: float, stop: threading.Event) -> None:
        self.waits.append(seconds)
        if self.on_wait is not None:
            self.on_wait(seconds)
        if stop.is_set():
            return
        self.t += seconds

    def work(self, seconds: float) -> None:
        """A step that takes ``seconds`` of real time."""
        self.t += seconds
