"""Sessions in a workspace: which one to continue, what is mirrored, restoring from a mirror,
and the journal's retention rule.

A session lives in ``sessions/session_<id>/``: ``session.json`` (status, counts, mirror status;
rewritten atomically after every step) and ``trajectories/`` (the journal; its archived
segments in ``archive/``). A session whose status is ``running`` (killed) or ``stopped``
(Ctrl-C) is unfinished: ``cvagents run`` continues the newest such session. A finished one is
never continued, on the machine that ran it or restored from its mirror on another: the run
starts a new session on the workspace it left.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from cvagents.config import check_session_id
from cvagents.durability.journal import Journal, JournalError
from cvagents.durability.journal_files import SEGMENT_RE
from cvagents.durability.mirror_target import MANIFEST_NAME, open_target
from cvagents.durability.restore import RestoreError, restore
from cvagents.durability.retention import apply_retention, prune_archives
from cvagents.errors import CVAgentsError

log = logging.getLogger("cvagents.durability.session")


class SessionStatus(StrEnum):
    """A session's status in ``session.json``."""

    RUNNING = "running"  # a coordinator is (or was, until it was killed) carrying it out
    STOPPED = "stopped"  # stopped on request (Ctrl-C, a stop event) between two steps
    FINISHED = "finished"  # held every meeting it was asked for


UNFINISHED = (SessionStatus.RUNNING, SessionStatus.STOPPED)


class SessionFileError(CVAgentsError):
    """A session's ``session.json`` or folder cannot be trusted; the message names it."""


def read_session_file(path: Path) -> dict[str, Any] | None:
    """A session's ``session.json`` (None when there is none), or ``SessionFileError`` naming it:
    not UTF-8, not JSON, not an object, or a ``session_id`` that is not its folder's."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    try:
        info = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise SessionFileError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise SessionFileError(f"{path}: not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
    if not isinstance(info, dict):
        raise SessionFileError(f"{path}: expected a JSON object, got {type(info).__name__}")
    folder = Path(path).parent.name.removeprefix("session_")
    if "session_id" in info and info["session_id"] != folder:
        raise SessionFileError(f"{path}: session_id {info['session_id']!r} is not its folder's ({folder!r})")
    return info


def session_dir(sessions_dir: Path, session_id: str) -> Path:
    return Path(sessions_dir) / f"session_{session_id}"


def journal_dir(sdir: Path) -> Path:
    return Path(sdir) / "trajectories"


def archive_dir(sdir: Path) -> Path:
    return Path(sdir) / "archive"


def sessions(sessions_dir: Path) -> list[dict[str, Any]]:
    """Every session with a journal, oldest first: {id, dir, info (session.json or None), damaged
    (what is wrong with its session.json or folder, or None)}. A damaged session is listed, never
    raised: one bad session does not hide the others."""
    out: list[dict[str, Any]] = []
    root = Path(sessions_dir)
    if not root.is_dir():
        return out
    for d in root.iterdir():
        if not d.name.startswith("session_") or not d.is_dir():
            continue
        jd = journal_dir(d)
        if not jd.is_dir() or not any(SEGMENT_RE.match(n) for n in os.listdir(jd)):
            continue
        info, damaged = None, None
        if d.is_symlink():
            damaged = f"{d}: a session folder that is a symbolic link (to {os.readlink(d)}): a run writes only inside its workspace"
        else:
            try:
                info = read_session_file(d / "session.json")
            except SessionFileError as e:
                damaged = str(e)
        order = (info or {}).get("updated_wall") or ""
        out.append(
            {
                "id": d.name[len("session_") :],
                "dir": d,
                "info": info,
                "damaged": damaged,
                "_order": (order, d.lstat().st_mtime),
            }
        )
    out.sort(key=lambda s: s["_order"])
    for s in out:
        del s["_order"]
    return out


def find_unfinished(sessions_dir: Path) -> str | None:
    """The newest session that did not finish (killed, or stopped with Ctrl-C). Sessions
    written before journals had checkpoints (no ``updated_wall`` in session.json) are not
    continued: their journal cannot say where they stopped. A session whose session.json is
    damaged may be the one to continue: ``SessionFileError`` naming it."""
    found = sessions(sessions_dir)
    for s in found:
        if s["damaged"]:
            raise SessionFileError(
                f"{s['damaged']}; cannot tell which session to continue: repair or remove that file, "
                "or choose with --session-id ID or --new-session"
            )
    for s in reversed(found):
        info = s["info"] or {}
        if info and not info.get("updated_wall"):
            continue
        if info.get("status", "running") in UNFINISHED:
            return s["id"]
    return None


def session_to_continue(sessions_dir: Path, session_id: str | None) -> str | None:
    """The session a run restored from a mirror goes on with: the mirror's own (``session_id``)
    unless it finished, and then None: as on the machine that ran it, the run starts a new
    session (or continues another unfinished one) on the workspace the finished one left."""
    if session_id is None:
        return None
    info = read_session_file(session_dir(sessions_dir, session_id) / "session.json") or {}
    return None if info.get("status") == SessionStatus.FINISHED else session_id


def previous_session(sessions_dir: Path, current: str) -> dict[str, Any] | None:
    """The newest session other than ``current``: ``{"id", "status"}`` (status None when its
    session.json is missing or damaged), or None when there is none."""
    for s in reversed(sessions(sessions_dir)):
        if s["id"] != current:
            return {"id": s["id"], "status": (s["info"] or {}).get("status")}
    return None


def simulated_end(sessions_dir: Path) -> datetime | None:
    """The latest simulated time any session reached (its session.json's ``updated``): an
    accelerated run ends hours ahead of the wall clock, and a new session starts from there so
    that meeting ids, reports and decisions stay in the order they happened."""
    ends = []
    for s in sessions(sessions_dir):
        try:
            t = datetime.fromisoformat(str((s["info"] or {}).get("updated")))
        except ValueError:
            continue
        ends.append(t if t.tzinfo else t.replace(tzinfo=UTC))
    return max(ends, default=None)


def latest(sessions_dir: Path) -> str | None:
    all_ = sessions(sessions_dir)
    return all_[-1]["id"] if all_ else None


# --------------------------------------------------------------------------- the mirror's layout


def mirror_sources(ws, *, log: bool = True) -> dict[str, Path]:
    """The workspace folders the mirror copies, named as in the workspace, so that the mirror
    reads as a (partial) workspace: ``reports/``, ``runs/`` (metrics), ``sessions/`` (journal and
    session.json), ``deployment/`` (stage pointers, version manifests and the artifacts, each
    copied once: they never change), ``research/`` and ``data/`` (the model and validation set a
    resumed run needs; copied once), and ``executive.log`` for the monitors (``log``; only its
    last 64 KiB, see ``mirror_files``: a restore leaves it out, the run starts its own).
    Listed sessions first (see below).
    """
    lay = ws.layout
    out: dict[str, Path] = {}
    # The sessions first: a tick scans (and so caps the journal copy) before it looks at the
    # files the journal describes, so the mirror's world is never behind its journal.
    for rel in (
        lay.sessions,
        lay.planning,
        lay.execution,
        lay.handoff,
        lay.metrics,
        lay.deployment,
        lay.research,
        lay.validation_set,
    ):
        top = Path(rel).parts[0]
        out.setdefault(top, ws.root / top)
    out.setdefault("reports", ws.reports_dir)
    out.setdefault(ws.meta_dir.name, ws.meta_dir)  # the workspace's descriptor: its layout, for readers
    if log:
        top = Path(lay.log).parts[0]
        out.setdefault(top, ws.root / top)  # the file itself, or the folder it is in
    return out


def mirror_manifest(target: str | os.PathLike) -> dict[str, Any] | None:
    """The mirror's MANIFEST.json, or None when there is none (yet)."""
    try:
        manifest = json.loads(open_target(target).read_bytes(MANIFEST_NAME))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _local_last_seq(ws, session_id: str) -> int:
    jd = journal_dir(session_dir(ws.sessions_dir, session_id))
    if not jd.is_dir():
        return -1
    try:
        j = Journal.open(jd, read_only=True)
    except JournalError:
        return -1
    try:
        return j.last_seq
    finally:
        j.close()


def restore_from_mirror(target: str | os.PathLike, ws) -> dict[str, Any]:
    """Restore a workspace from a mirror (verified against its manifest; nothing is written if
    anything fails to verify) and return the manifest's ``extra`` (``session_id`` ...).

    A workspace that already holds the session at least as far as the mirror (the notebook
    re-run on the same VM) is left as it is: it is newer than its mirror. One that holds an
    older copy is brought up to the mirror's."""
    manifest = mirror_manifest(target)
    if manifest is None:
        raise RestoreError(f"cannot resume from the mirror: no readable {MANIFEST_NAME} in {target}")
    extra = dict(manifest.get("extra") or {})
    sid = extra.get("session_id")
    if sid is not None:  # it becomes a folder name under the workspace
        check_session_id(sid, f"{target}/{MANIFEST_NAME}: extra.session_id")
    local = _local_last_seq(ws, sid) if sid else -1
    if sid and local >= int(extra.get("journal_last_seq") or 0):
        log.info(
            "⤵ The workspace already holds session %s at record %d (the mirror: %s): not restoring",
            sid,
            local,
            extra.get("journal_last_seq"),
        )
        return extra
    ws.root.mkdir(parents=True, exist_ok=True)
    try:
        res = restore(target, mirror_sources(ws, log=False), overwrite=local >= 0)
    except RestoreError as e:
        raise RestoreError(f"cannot resume from the mirror: {e}") from None
    log.info(
        "⤵ Restored %d files (%.1f MB) from the mirror %s (%d already present)",
        len(res.files),
        res.bytes / 1e6,
        target,
        len(res.unchanged),
    )
    return dict(res.extra or extra)


# --------------------------------------------------------------------------- retention


def apply_journal_retention(sdir: Path, keep_segments: int, keep_archived: int | None) -> dict[str, int]:
    """Gzip closed segments beyond the newest ``keep_segments`` into ``archive/``; then delete
    archives beyond the newest ``keep_archived`` (None: keep all). Resume never needs them (it
    starts from the last checkpoint); a mirror keeps what it copied until the next tick."""
    archived = apply_retention(journal_dir(sdir), archive_dir(sdir), keep_segments)
    pruned = prune_archives(journal_dir(sdir), keep_archived) if keep_archived is not None else []
    return {"archived": len(archived), "pruned": len(pruned)}


def disk_usage(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, f))
            except OSError:
                pass
    return total
