"""One run per workspace: a lock held for the whole run.

Two coordinators on one workspace would carry out each other's handoffs and deploy twice (the
journal's own lock is per session, so ``--new-session`` got past it). ``WorkspaceLock`` takes an
exclusive ``flock`` (through the ``filelock`` package) on ``<workspace>/.cvagents.lock`` and
writes the holder's pid and start time into it; a second run finds the lock taken and says by
whom. The kernel releases a ``flock`` when its process dies, however it dies, so the lock of a
run killed with ``kill -9`` is simply free: the next run takes it over and writes its own pid.
Readers (``status``, ``plot``, the dashboards) never take it.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from cvagents.errors import CVAgentsError

LOCK_NAME = ".cvagents.lock"


class WorkspaceInUse(CVAgentsError):
    """Another run holds the workspace."""


class WorkspaceLock:
    """``with WorkspaceLock(root):`` — held until the block ends (or the process does)."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.path = self.root / LOCK_NAME
        self._lock = FileLock(
            self.path,
            mode=0o644,
            thread_local=False,
            fallback_to_soft=False,  # a soft lock would outlive a killed run; refuse a filesystem without flock
            preserve_lock_file=True,  # the file stays; the flock is what holds
            on_acquired=self._stamp,
        )

    def _stamp(self, fd: int) -> None:
        """Record who holds the lock, in the file itself (the lock is the flock, not the content)."""
        holder = {"pid": os.getpid(), "since": datetime.now(UTC).isoformat(timespec="seconds")}
        data = json.dumps(holder).encode() + b"\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)

    def holder(self) -> dict[str, Any]:
        """What the lock file says about its holder ({} when it says nothing readable)."""
        try:
            info = json.loads(self.path.read_bytes() or b"{}")
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}

    def acquire(self) -> WorkspaceLock:
        """Take the lock at once, or raise ``WorkspaceInUse`` naming the run that holds it."""
        try:
            self._lock.acquire(blocking=False)
        except Timeout:
            h = self.holder()
            who = f"run {h.get('pid', '?')} since {h.get('since', '?')}" if h else "another run"
            raise WorkspaceInUse(f"{self.root}: workspace in use by {who}") from None
        return self

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release()

    @property
    def held(self) -> bool:
        return self._lock.is_locked

    def __enter__(self) -> WorkspaceLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
