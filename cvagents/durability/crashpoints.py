"""Crash injection for the crash tests: ``kill -9`` the process at a named point.

Set ``CVAGENTS_CRASH_AT=<name>`` (or ``<name>:<n>`` for the n-th time the point is passed) and
the process sends itself SIGKILL there: no ``finally``, no flush, no atexit, exactly what a
Colab disconnect or an OOM kill does. Without the variable every call is one dict lookup.

Points are named ``<where>:<what>``, e.g. ``after:agent_response`` (the coordinator's journal
writes: ``before:<kind>``, ``after:<kind>``, ``torn:<kind>`` = half a line written, then death),
``deploy:after_copy``, ``atomic:pending_actions.json`` (temp file written, not yet renamed),
``tool_after:deploy_model`` (the tool acted, its result not yet journaled).
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "CVAGENTS_CRASH_AT"

_lock = threading.Lock()
_counts: dict[str, int] = {}
_spec: tuple[str, int] | None | bool = False  # False: not parsed yet


def _target() -> tuple[str, int] | None:
    global _spec
    if _spec is False:
        raw = os.environ.get(ENV, "").strip()
        if not raw:
            _spec = None
        else:
            name, _, nth = raw.rpartition(":")
            if name and nth.isdigit():
                _spec = (name, int(nth))
            else:
                _spec = (raw, 1)
    return _spec  # type: ignore[return-value]


def reset() -> None:
    """Forget the parsed variable and the counts (tests that change the environment)."""
    global _spec
    with _lock:
        _spec = False
        _counts.clear()


def armed(name: str) -> bool:
    """Count one pass through ``name``; True if this is the pass to die at."""
    spec = _target()
    if spec is None or spec[0] != name:
        return False
    with _lock:
        _counts[name] = _counts.get(name, 0) + 1
        return _counts[name] == spec[1]


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def crashpoint(name: str) -> None:
    """Die here if ``CVAGENTS_CRASH_AT`` names this point (and pass)."""
    if armed(name):
        die()


def torn_append(journal, kind: str, data: dict) -> None:
    """Write the first half of the record ``journal.append(kind, data)`` would write, then die:
    the torn last line that ``Journal.open`` must detect and cut."""
    from cvagents.durability.journal_lines import encode_line

    line, _ = encode_line(journal.last_seq + 1, "1970-01-01T00:00:00.000000+00:00", kind, data)
    os.write(journal._fd, line[: max(1, len(line) // 2)])
    os.fsync(journal._fd)
    die()
