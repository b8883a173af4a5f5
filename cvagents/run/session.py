"""The session a run writes to: which one it is, its journal (every record passes the crash
points), its ``session.json`` and its mirror. Finding, restoring and pruning sessions on disk is
``cvagents.durability.session``."""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cvagents.clock import stamp
from cvagents.config import CoordinationConfig
from cvagents.durability import crashpoints
from cvagents.durability.atomic import atomic_write_json, read_json
from cvagents.durability.crashpoints import crashpoint
from cvagents.durability.journal import Journal, Record
from cvagents.durability.mirror import Mirror
from cvagents.durability.session import (
    SessionFileError,
    SessionStatus,
    apply_journal_retention,
    find_unfinished,
    mirror_sources,
    read_session_file,
)
from cvagents.errors import CVAgentsError
from cvagents.run.options import RunOptions
from cvagents.workspace import Workspace

__all__ = ["RunSession", "SessionExistsError"]

log = logging.getLogger("cvagents.run")


class SessionExistsError(CVAgentsError):
    """``--new-session`` named a session that already has a journal."""


class RunSession:
    """The session ``options`` ask for (``session_id``), else the newest unfinished one (unless
    ``new_session``), else a new one named after ``now``; ``resuming`` when it has a journal.
    ``repair``: cut a damaged journal at the damage instead of refusing it (``JournalDamaged``)."""

    def __init__(
        self,
        ws: Workspace,
        cfg: CoordinationConfig,
        now: datetime,
        options: RunOptions,
    ):
        session_id, new_session, mirror_to, repair = (
            options.session_id,
            options.new_session,
            options.mirror_to,
            options.repair,
        )
        self.cfg = cfg
        sid = session_id
        if sid is None and not new_session:
            sid = find_unfinished(ws.sessions_dir)
        self.session_id = sid or f"{stamp(now)}_{uuid.uuid4().hex[:6]}"
        self.session_dir = ws.sessions_dir / f"session_{self.session_id}"
        if self.session_dir.is_symlink():
            raise SessionFileError(
                f"{self.session_dir}: a session folder that is a symbolic link: a run writes only inside its workspace"
            )
        jdir = self.session_dir / "trajectories"
        old = read_session_file(self.session_file) or {}  # damaged: refused before the journal is touched
        self.resuming = jdir.is_dir() and any(p.suffix == ".jsonl" for p in jdir.iterdir())
        if self.resuming and new_session and session_id:
            raise SessionExistsError(f"session {self.session_id} already exists; --new-session needs a new id")
        jc = cfg.journal
        self.journal = Journal.open(jdir, segment_max_bytes=jc.segment_max_bytes, fsync=jc.fsync, repair=repair)
        self._lock = threading.Lock()
        self.resumes = int(old.get("resumes", 0)) + (1 if self.resuming else 0)
        self.started_wall = old.get("started_wall", datetime.now(UTC).isoformat(timespec="seconds"))
        self.mirror: Mirror | None = None
        target = mirror_to or cfg.mirror.target
        if target:
            self.mirror = Mirror(
                dict(mirror_sources(ws)),
                target,
                interval_s=cfg.mirror.interval_seconds,
                manifest_extra=lambda: {"session_id": self.session_id, "journal_last_seq": self.journal.last_seq},
            )

    @property
    def session_file(self) -> Path:
        return self.session_dir / "session.json"

    def record(self, kind: str, data: dict) -> Record:
        """Journal one record; returns it as the journal holds it (its data through JSON once)."""
        with self._lock:
            if crashpoints.armed(f"torn:{kind}"):
                crashpoints.torn_append(self.journal, kind, data)
            crashpoint(f"before:{kind}")
            rec = self.journal.append(kind, data)
            crashpoint(f"after:{kind}")
            return rec

    def note(self, kind: str, data: dict) -> None:
        """``record`` for callers that do not need the record back."""
        self.record(kind, data)

    def write_status(self, status: SessionStatus, run: dict[str, Any]) -> None:
        """``session.json``: the session's status, ``run`` (what the run says of itself), the
        journal's and the mirror's state."""
        atomic_write_json(
            self.session_file,
            {
                "session_id": self.session_id,
                "status": status,
                **{k: run[k] for k in ("config_hash", "time_scale", "providers", "meetings_held", "heartbeats")},
                "agents": run.get("agents") or {},  # cvagents.run.roster: who serves each agent
                "updated": run["updated"],
                "updated_wall": datetime.now(UTC).isoformat(timespec="microseconds"),
                "started_wall": self.started_wall,
                "resumes": self.resumes,
                "last_resume": run["last_resume"],
                "journal": {"last_seq": self.journal.last_seq, "segments": len(self.journal.segments())},
                "mirror": self.mirror_status(),
            },
        )

    def retain(self) -> None:
        """Archive and prune old journal segments as ``journal:`` says."""
        jc = self.cfg.journal
        if len(self.journal.segments()) > jc.keep_segments + 1:
            done = apply_journal_retention(self.session_dir, jc.keep_segments, jc.keep_archived_segments)
            if done["archived"] or done["pruned"]:
                log.debug("journal retention: %s", done)

    def kick_mirror(self) -> None:
        if self.mirror is not None:
            self.mirror.kick()

    def mirror_status(self) -> dict | None:
        if self.mirror is None:
            return None
        st = self.mirror.status()
        st.pop("last_tick", None)
        return st

    def close(self) -> None:
        """The mirror's final flush (its outcome into session.json), then the journal."""
        if self.mirror is not None:
            res = self.mirror.stop(timeout=60.0)
            if not res.ok:
                log.warning("final mirror flush to %s failed: %s", self.mirror.target, "; ".join(res.errors))
            try:
                st = read_json(self.session_file)
                if st:
                    st["mirror"] = self.mirror_status()
                    atomic_write_json(self.session_file, st)
            except OSError:
                pass
        self.journal.close()
