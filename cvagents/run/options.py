"""What a caller asks of a run (``RunOptions``), and Ctrl-C as a request to stop between steps."""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass

from cvagents.clock import Clock


@dataclass
class RunOptions:
    meetings: int | None = None
    time_scale: float = 1.0
    session_id: str | None = None  # continue (or start) this session
    console: bool = True
    new_session: bool = False  # never continue an unfinished session
    mirror_to: str | None = None  # overrides mirror.target in the config
    rebuild_reports: bool = False  # rebuild reports/ from the journal before continuing (after a restore)
    from_mirror: str | None = None  # where the workspace was restored from (for the record)
    repair: bool = False  # cut a damaged journal at the damage (recorded) instead of refusing to resume


def install_sigint(clock: Clock) -> None:
    """First Ctrl-C: stop cleanly after the current step. Second: stop now."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        if clock.stop_event.is_set():
            raise KeyboardInterrupt
        print("\n⏹ Stopping after the current step (Ctrl-C again to stop at once)...", flush=True)
        clock.stop()

    signal.signal(signal.SIGINT, handler)
