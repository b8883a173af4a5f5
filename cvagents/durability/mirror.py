"""The mirror: copy a session's folders to Google Drive (or any folder or fsspec URL) in the background.

Where the copy goes is a ``MirrorTarget`` (``mirror_target``); copying it back is ``restore``.
Rules a reader of the mirror relies on:

* A file under its real name is only ever replaced whole (the target's ``put``), never written
  in place, so it is never seen half-written; Google Drive's FUSE mount handles whole new files
  well and often-appended files badly.
* Trust only files listed in MANIFEST.json, and read only the first ``size`` bytes of each:
  journal segments are append-only, so a copy that is newer than the manifest still starts with
  the listed bytes, and ``sha256`` covers exactly those.
* Journal segments (``segment_*.jsonl``) are copied up to their last complete line; their
  sha256 is extended incrementally and closed segments are copied once, so a tick costs what
  changed, not the size of the journal.

A failing target never raises into the caller: the error is recorded in ``status()`` and the
tick is retried with backoff. A local target folder that vanishes (Drive unmounted, folder
deleted) is not silently re-created; when it comes back the mirror sees its manifest is gone
and copies everything again.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cvagents.clock import stopwatch
from cvagents.durability import mirror_files
from cvagents.durability.mirror_files import Copied
from cvagents.durability.mirror_target import MANIFEST_FORMAT, MANIFEST_NAME, FileSlice, open_target

__all__ = ["Mirror", "TickResult", "MANIFEST_NAME"]

log = logging.getLogger(__name__)

_MAX_BACKOFF_S = 300.0


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class TickResult:
    files_copied: int = 0
    bytes_copied: int = 0  # bytes written to the target (a double-buffered segment: only its new bytes)
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    manifest_written: bool = False
    files_removed: int = 0
    pending: int | None = None  # changed files not mirrored after this tick (None: not scanned)

    @property
    def ok(self) -> bool:
        return not self.errors


class Mirror:
    """Mirror ``sources`` (name -> local folder) into ``target`` every ``interval_s`` seconds.

    ``manifest_extra`` is called at the start of each tick and its dict goes into the manifest
    under ``"extra"`` (pass e.g. ``lambda: {"journal_last_seq": journal.last_seq}``; since it is
    called before files are copied, the mirrored journal holds at least that many records).

    ``fsync``: fsync each copy, the manifest and their folders (the mirror is the second copy,
    and the journal fsyncs itself, so this is off by default). ``create_target``: create the
    target folder on the first tick if missing (never again afterwards). ``incremental_copies``:
    publish growing journal segments by double buffering on local non-FUSE folders (None: auto).
    ``clock``: the monotonic clock the schedule's deadlines are read from (a tick's duration is
    measured with the stopwatch).
    """

    def __init__(
        self,
        sources: dict[str, str | os.PathLike],
        target: str | os.PathLike,
        *,
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        manifest_extra: Callable[[], dict] | None = None,
        fsync: bool = False,
        create_target: bool = True,
        incremental_copies: bool | None = None,
    ):
        for name in sources:
            if (
                not name
                or "/" in name
                or "\\" in name
                or name in (".", "..", MANIFEST_NAME)
                or mirror_files.skip_name(name)
            ):
                raise ValueError(f"bad source name {name!r}")
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.sources = {name: Path(p) for name, p in sources.items()}
        self.target = os.fspath(target)
        self.interval_s = interval_s
        self.clock = clock
        self.manifest_extra = manifest_extra
        self._create_target = create_target
        self._dest = open_target(target, fsync=fsync, incremental=incremental_copies)
        self._maybe_staged: set[str] = set()  # segments put as growing: the target may keep a stage copy
        self._copied: dict[str, Copied] = {}
        self._manifest_size: int | None = None  # size of the manifest we last wrote
        self._last_extra: Any = None
        self._tick_lock = threading.Lock()
        self._status_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._kicked = False
        self._thread: threading.Thread | None = None
        self._next_due: float | None = None
        self._status: dict[str, Any] = {
            "target": str(self._dest),
            "ticks": 0,
            "last_success": None,
            "last_attempt": None,
            "last_error": None,
            "last_error_at": None,
            "consecutive_failures": 0,
            "files_mirrored": 0,
            "bytes_mirrored": 0,
            "pending": None,
            "last_tick": None,
            "backoff_s": interval_s,
        }

    # ---- thread

    def start(self) -> Mirror:
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="cvagents-mirror", daemon=True)
        self._thread.start()
        return self

    def kick(self) -> None:
        """Ask the thread for a tick now (at the end of a meeting or an action), without waiting
        for it: a slow or failing target never holds up the caller. Backoff after failures holds."""
        self._kicked = True
        self._wake.set()

    def stop(self, timeout: float | None = 60.0) -> TickResult:
        """Stop the thread and do a final flush (waiting at most ``timeout`` for a hung tick)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        return self.flush(timeout=timeout)

    def _run(self) -> None:
        self._next_due = self.clock()
        while not self._stop.is_set():
            wait = max(0.0, (self._next_due or 0.0) - self.clock())
            kicked = self._kicked and self._status["consecutive_failures"] == 0  # a failing target keeps its backoff
            if not kicked:
                self._wake.wait(min(wait, self.interval_s, _MAX_BACKOFF_S))
                self._wake.clear()
            if self._stop.is_set():
                break
            kicked = self._kicked and self._status["consecutive_failures"] == 0
            if kicked or self.clock() >= (self._next_due or 0.0):
                self._kicked = False
                try:
                    self.flush()
                except Exception:  # noqa: BLE001 - flush() does not raise; belt and braces for the thread
                    log.exception("mirror tick crashed")
                    self._next_due = self.clock() + self.interval_s

    def __enter__(self) -> Mirror:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- status

    def status(self) -> dict:
        with self._status_lock:
            st = dict(self._status)
        st["running"] = self._thread is not None and self._thread.is_alive() and not self._stop.is_set()
        st["next_tick_in_s"] = (
            None if self._next_due is None or not st["running"] else max(0.0, self._next_due - self.clock())
        )
        return st

    # ---- one tick

    def flush(self, timeout: float | None = None) -> TickResult:
        """Mirror what changed, now. Never raises; waits at most ``timeout`` for a running tick."""
        if not self._tick_lock.acquire(timeout=-1 if timeout is None else timeout):
            return TickResult(errors=["a previous tick is still running (target hung?)"])
        try:
            sw = stopwatch()
            result = TickResult()
            try:
                self._tick(result)
            except Exception as exc:  # noqa: BLE001 - the mirror must never kill the run
                result.errors.append(f"{type(exc).__name__}: {exc}")
            result.seconds = sw.elapsed()
            self._record(result)
            return result
        finally:
            self._tick_lock.release()

    def _record(self, result: TickResult) -> None:
        with self._status_lock:
            st = self._status
            st["ticks"] += 1
            st["last_attempt"] = _now_iso()
            st["last_tick"] = {k: v for k, v in asdict(result).items() if k != "errors"}
            if result.pending is not None:
                st["pending"] = result.pending
            st["files_mirrored"] = len(self._copied)
            st["bytes_mirrored"] = sum(c.size for c in self._copied.values())
            if result.ok:
                st["last_success"] = st["last_attempt"]
                st["consecutive_failures"] = 0
                delay = self.interval_s
            else:
                st["last_error"] = "; ".join(result.errors)[:2000]
                st["last_error_at"] = st["last_attempt"]
                st["consecutive_failures"] += 1
                delay = min(
                    self.interval_s * 2 ** (st["consecutive_failures"] - 1), max(self.interval_s, _MAX_BACKOFF_S)
                )
                log.warning(
                    "mirror to %s failed (%d in a row): %s", self._dest, st["consecutive_failures"], st["last_error"]
                )
            st["backoff_s"] = delay
            self._next_due = self.clock() + delay

    def _tick(self, result: TickResult) -> None:
        extra = None
        if self.manifest_extra is not None:
            try:
                extra = self.manifest_extra()
            except Exception as exc:  # noqa: BLE001
                result.errors.append(f"manifest_extra: {type(exc).__name__}: {exc}")
        dest = self._dest
        dest.ready(create=self._create_target and self._status["last_success"] is None)
        if self._manifest_size is None or dest.size(MANIFEST_NAME) != self._manifest_size:
            self._reconcile()  # first tick, or the target was wiped / replaced behind our back

        scanned, missing_roots = mirror_files.scan(self.sources)
        changed = [rel for rel, st in scanned.items() if self._differs(rel, st)]
        result.pending = len(changed)
        for rel in changed:
            src = mirror_files.local_path(self.sources, rel)
            try:
                fd = os.open(src, os.O_RDONLY)
            except (FileNotFoundError, NotADirectoryError):
                result.pending -= 1  # gone since the scan; the next scan drops it
                continue
            try:
                n = self._copy_one(rel, fd, scanned[rel])
            except OSError as exc:
                result.errors.append(f"{rel}: {type(exc).__name__}: {exc}")
                break  # the target is failing: don't grind through every file
            finally:
                os.close(fd)
            result.pending -= 1
            if n is not None:
                result.files_copied += 1
                result.bytes_copied += n

        self._drop_closed_stages(scanned)
        gone = [rel for rel in self._copied if rel not in scanned and rel.split("/", 1)[0] not in missing_roots]
        for rel in gone:
            del self._copied[rel]
        if result.files_copied or gone or extra != self._last_extra or self._manifest_size is None:
            self._write_manifest(extra)
            result.manifest_written = True
            for rel in gone:  # only once the manifest no longer lists them
                dest.remove(rel)
                result.files_removed += 1

    def _drop_closed_stages(self, scanned: dict[str, os.stat_result]) -> None:
        """Only the newest segment of a journal grows; older ones need no stage copy."""
        if not self._maybe_staged:
            return
        keep = mirror_files.newest_segments(scanned)
        for rel in self._maybe_staged - keep:
            self._dest.drop_stage(rel)
        self._maybe_staged &= keep

    def _differs(self, rel: str, st: os.stat_result) -> bool:
        c = self._copied.get(rel)
        return c is None or c.stat != mirror_files.stat_key(st)

    def _copy_one(self, rel: str, fd: int, scanned: os.stat_result) -> int | None:
        """Copy one changed file; returns bytes written, or None if its content had not changed."""
        prev = self._copied.get(rel)
        entry, grown_from = mirror_files.describe(rel, fd, prev, scanned)
        if prev is not None and (prev.size, prev.sha256) == (entry.size, entry.sha256):
            self._copied[rel] = entry  # touched, or only an incomplete line is new: nothing to copy
            return None
        if grown_from is not None:
            self._maybe_staged.add(rel)
        written = self._dest.put(
            rel, entry.data if entry.data is not None else FileSlice(fd, entry.size), grown_from=grown_from
        )
        entry.data = None
        self._copied[rel] = entry
        return written

    def _write_manifest(self, extra: Any) -> None:
        manifest = {
            "format": MANIFEST_FORMAT,
            "written_at": _now_iso(),
            "files": {rel: {"size": c.size, "sha256": c.sha256} for rel, c in sorted(self._copied.items())},
            "extra": extra,
        }
        data = json.dumps(manifest, separators=(",", ":")).encode()  # no indent: the C encoder
        self._dest.sync()  # everything listed is durable before the list is
        self._dest.put(MANIFEST_NAME, data)
        self._dest.sync()
        self._manifest_size = len(data)
        self._last_extra = extra

    def _reconcile(self) -> None:
        """Adopt what the target already holds (a resumed run, or a target that came back).

        A file counts as mirrored only if the target's manifest lists it with the sha256 of our
        local bytes and the target copy has that size; everything else is copied again.
        """
        dest = self._dest
        self._copied.clear()
        self._maybe_staged.clear()
        self._manifest_size = None
        dest.reset()
        try:
            listed = json.loads(dest.read_bytes(MANIFEST_NAME)).get("files", {})
        except (OSError, ValueError, AttributeError):
            listed = {}
        scanned, _missing = mirror_files.scan(self.sources)
        for rel, st in scanned.items():
            meta = listed.get(rel)
            if not isinstance(meta, dict) or not isinstance(meta.get("size"), int) or meta["size"] > st.st_size:
                continue
            if dest.size(rel) != meta["size"]:
                continue
            src = mirror_files.local_path(self.sources, rel)
            try:
                fd = os.open(src, os.O_RDONLY)
            except OSError:
                continue
            try:
                adopted = mirror_files.adopt(rel, fd, st, meta)
            finally:
                os.close(fd)
            if adopted is not None:
                self._copied[rel] = adopted
