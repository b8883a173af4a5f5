"""Polling for a condition that a background thread or process makes true."""

from __future__ import annotations

import time


def wait_for(cond, timeout: float = 15.0, every: float = 0.02) -> bool:
    """True as soon as ``cond()`` is, False when ``timeout`` seconds pass first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(every)
    return False
