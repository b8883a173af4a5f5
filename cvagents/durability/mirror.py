"""The mirror: copy a session's folders to Google Drive (or any folder or fsspec URL) in the background.

Target layout::

    <target>/<source name>/<path relative to that source>
    <target>/MANIFEST.json        written last, after every file it lists is in place

Rules a reader of the mirror relies on:

* A file under its real name is only ever replaced whole (temp file + atomic rename), never
  written in place, so it is never seen half-written; Google Drive's FUSE mount handles whole
  new files well and often-appended files badly.
* Trust only files listed in MANIFEST.json, and read only the first ``size`` bytes of each:
  journal segments are append-only, so a copy that is newer than the manifest still starts with
  the listed bytes, and ``sha256`` covers exactly those.
* Journal segments (``segment_*.jsonl``) are copied up to their last complete line; their
  sha256 is extended incrementally and closed segments are copied once, so a tick costs what
  changed, not the size of the journal. Hidden ``.*.mirror-tmp`` / ``.*.mirror-stage`` files
  are the mirror's own scratch copies.

A failing target never raises into the caller: the error is recorded in ``status()`` and the
tick is retried with backoff. A local target folder that vanishes (Drive unmounted, folder
deleted) is not silently re-created; when it comes back the mirror sees its manifest is gone
and copies everything again.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cvagents.durability.journal_files import SEGMENT_RE

__all__ = ["Mirror", "TickResult", "RestoreResult", "RestoreError", "restore", "MANIFEST_NAME"]

log = logging.getLogger(__name__)

MANIFEST_NAME = "MANIFEST.json"
MANIFEST_FORMAT = "cvagents-mirror/1"
_TMP_SUFFIX = ".mirror-tmp"
_STAGE_SUFFIX = ".mirror-stage"
_CHUNK = 1 << 20
_TAIL = 64  # bytes remembered before a hashed prefix, to notice a rewritten (non-appended) file
_MAX_BACKOFF_S = 300.0


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _skip_name(name: str) -> bool:
    """Temporary and hidden files: other writers' atomic-write temps, the journal lock, ours."""
    return (
        name.startswith((".", "~"))
        or name.endswith((".tmp", ".part", ".swp", _TMP_SUFFIX, _STAGE_SUFFIX))
        or ".tmp" in name
    )


def _pread_chunks(fd: int, start: int, end: int) -> Iterator[bytes]:
    pos = start
    while pos < end:
        chunk = os.pread(fd, min(_CHUNK, end - pos), pos)
        if not chunk:
            raise OSError(f"source file shrank while being copied (at byte {pos} of {end})")
        yield chunk
        pos += len(chunk)


# --------------------------------------------------------------------------- targets


def _load_renameat2() -> Any:
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not Linux, or glibc < 2.28
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn


_renameat2 = _load_renameat2()
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths (renameat2 RENAME_EXCHANGE); False if unsupported here."""
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        if err in (errno.ENOENT, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV, errno.EPERM):
            return False  # `b` does not exist yet, or a filesystem without exchange
        raise OSError(err, os.strerror(err), str(b))
    return True


def _fs_type(path: Path) -> str | None:
    """The filesystem type of the mount holding ``path`` (Linux), e.g. "ext4" or "fuse.drive"."""
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    target, best, fstype = os.path.realpath(path), "", None
    for line in lines:
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) < 5 or not right:
            continue
        mp = fields[4].replace("\\040", " ")
        if (target == mp or target.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
            best, fstype = mp, right.split()[0]
    return fstype


def _copy_range(src: int, dst: int, start: int, end: int) -> None:
    """Copy bytes [start, end) of src to the same offsets of dst: in-kernel where possible."""
    pos = start
    try:
        while pos < end:
            n = os.copy_file_range(src, dst, end - pos, pos, pos)
            if n == 0:
                break
            pos += n
    except (OSError, AttributeError):  # FUSE, old kernels, other platforms
        pass
    for chunk in _pread_chunks(src, pos, end):
        os.pwrite(dst, chunk, pos)
        pos += len(chunk)


class _LocalTarget:
    """A local folder, e.g. the mounted Google Drive: write a temp file, fsync (optional), rename.

    Where the folder's filesystem can exchange two names atomically and is not FUSE (so not
    Drive, which must only ever see whole new files), a growing journal segment is published
    by double buffering instead of a full copy: the previous copy, swapped out to a hidden
    ``.<name>.mirror-stage``, is topped up with the new bytes and swapped back in. A tick then
    costs what was appended, not the size of the open segment.
    """

    def __init__(self, root: Path, fsync: bool):
        self.root = root
        self.fsync = fsync
        self._dirty_dirs: set[Path] = set()
        self._known_dirs: set[Path] = set()
        self._staging: bool | None = None  # decided on first use
        self._published: dict[str, int] = {}  # rel -> bytes in the copy under its real name
        self._stages: dict[str, int] = {}  # rel -> bytes in its hidden stage copy (a prefix)

    def __str__(self) -> str:
        return str(self.root)

    def ready(self, create: bool) -> None:
        drive = Path("/content/drive")
        if self.root.is_relative_to(drive) and not os.path.ismount(drive):
            raise OSError(f"Google Drive is not mounted at {drive}; not writing to {self.root}")
        if not self.root.is_dir():
            if not create:
                raise FileNotFoundError(f"mirror target folder is missing: {self.root}")
            self.root.mkdir(parents=True, exist_ok=True)
            self.forget()
        if self._staging is None:
            fstype = _fs_type(self.root) or "unknown"
            self._staging = _renameat2 is not None and not fstype.startswith("fuse") and fstype != "unknown"

    def forget(self) -> None:
        """Drop cached knowledge of the target (it was wiped or replaced)."""
        self._known_dirs.clear()
        self._published.clear()
        self._stages.clear()

    def _prepare(self, rel: str) -> tuple[Path, Path]:
        path = self.root / rel
        parent = path.parent
        if parent not in self._known_dirs:
            # Create sub-folders one level at a time from the root, never the root itself:
            # a vanished target (unmounted Drive) must fail, not be re-created on local disk.
            d = self.root
            for part in Path(rel).parent.parts:
                d = d / part
                try:
                    d.mkdir()
                except FileExistsError:
                    pass
            if not self.root.is_dir():
                raise FileNotFoundError(f"mirror target folder is missing: {self.root}")
            self._known_dirs.add(parent)
        return path, parent / f".{path.name}{_TMP_SUFFIX}"

    def _stage_path(self, rel: str) -> Path:
        path = self.root / rel
        return path.parent / f".{path.name}{_STAGE_SUFFIX}"

    def _publish(self, tmp: Path, path: Path, rel: str, length: int, keep_old: bool) -> None:
        """Put ``tmp`` (``length`` bytes, closed) at ``path`` atomically."""
        # Exchange rather than os.replace where possible: ext4 skips its replace-via-rename
        # writeback (auto_da_alloc), which made replacing a 4 MB copy ~10x dearer than writing it.
        if _exchange(tmp, path):
            old = self._published.get(rel)
            if keep_old and self._staging and old is not None and old <= length:
                os.replace(tmp, self._stage_path(rel))  # the previous copy becomes the stage
                self._stages[rel] = old
            else:
                tmp.unlink()
        else:
            os.replace(tmp, path)
        self._published[rel] = length
        self._dirty_dirs.add(path.parent)

    def put_fd(self, rel: str, fd: int, length: int, grown_from: int | None = None) -> int:
        """Copy the first ``length`` bytes of ``fd`` to ``rel``; returns the bytes written.
        ``grown_from``: the file is append-only and unchanged up to there since the last copy."""
        if grown_from is not None:
            written = self._top_up(rel, fd, length)
            if written is not None:
                return written
        self._write_new(rel, lambda out: _copy_range(fd, out, 0, length), length, keep_old=grown_from is not None)
        return length

    def _write_new(self, rel: str, write: Callable[[int], None], length: int, keep_old: bool) -> None:
        """Write a fresh copy of ``rel`` to a temporary file with ``write(out_fd)``, then publish it."""
        path, tmp = self._prepare(rel)
        try:
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except FileNotFoundError:  # parent vanished under us: forget what we knew and retry once
            self._known_dirs.clear()
            path, tmp = self._prepare(rel)
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write(out)
            if self.fsync:
                os.fsync(out)
        except BaseException:
            os.close(out)
            tmp.unlink(missing_ok=True)
            raise
        os.close(out)
        self._publish(tmp, path, rel, length, keep_old=keep_old)

    def _top_up(self, rel: str, fd: int, length: int) -> int | None:
        have = self._stages.pop(rel, None)
        if have is None or have > length:
            return None
        stage, path = self._stage_path(rel), self.root / rel
        try:
            out = os.open(stage, os.O_WRONLY)
        except FileNotFoundError:
            return None
        try:
            if os.fstat(out).st_size != have:
                return None
            _copy_range(fd, out, have, length)
            if self.fsync:
                os.fsync(out)
        finally:
            os.close(out)
        if not _exchange(stage, path):
            stage.unlink(missing_ok=True)
            return None
        old = self._published.get(rel)
        if old is not None and old <= length:
            self._stages[rel] = old  # what we just swapped out is the next stage
        else:
            stage.unlink(missing_ok=True)
        self._published[rel] = length
        self._dirty_dirs.add(path.parent)
        return length - have

    def drop_stage(self, rel: str) -> None:
        """The file will not grow again (e.g. a closed segment): its stage copy can go."""
        if self._stages.pop(rel, None) is not None:
            self._stage_path(rel).unlink(missing_ok=True)

    def staged(self) -> set[str]:
        return set(self._stages)

    def write_bytes(self, rel: str, data: bytes) -> None:
        def write(out: int) -> None:
            view = memoryview(data)
            while view:
                view = view[os.write(out, view) :]

        self._write_new(rel, write, len(data), keep_old=False)

    def sync_dirs(self) -> None:
        """fsync the folders renamed into, so the renames themselves are durable."""
        if self.fsync:
            for d in self._dirty_dirs:
                fd = os.open(d, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        self._dirty_dirs.clear()

    def read_bytes(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()

    def size(self, rel: str) -> int | None:
        try:
            return (self.root / rel).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            return None

    def remove(self, rel: str) -> None:
        self.drop_stage(rel)
        self._published.pop(rel, None)
        (self.root / rel).unlink(missing_ok=True)

    def stale_temps(self) -> list[str]:
        out = []
        for dirpath, _dirs, files in os.walk(self.root):
            out += [
                os.path.relpath(os.path.join(dirpath, f), self.root)
                for f in files
                if f.endswith((_TMP_SUFFIX, _STAGE_SUFFIX))
            ]
        return out


class _FsspecTarget:
    """Any fsspec filesystem: write a temp object, then ``mv`` it (or write directly if mv fails)."""

    def __init__(self, url: str):
        import fsspec

        self.url = url
        self.fs, root = fsspec.core.url_to_fs(url)
        self.root = root.rstrip("/")

    def __str__(self) -> str:
        return self.url

    def _p(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def ready(self, create: bool) -> None:
        # Folders are often virtual here (object stores): there is no "unmounted" to guard against.
        self.fs.makedirs(self.root, exist_ok=True)

    def _put(self, rel: str, write: Callable[[Any], None]) -> None:
        path = self._p(rel)
        parent, _, name = path.rpartition("/")
        tmp = f"{parent}/.{name}{_TMP_SUFFIX}"
        self.fs.makedirs(parent, exist_ok=True)
        with self.fs.open(tmp, "wb") as f:
            write(f)
        try:
            self.fs.mv(tmp, path)
        except NotImplementedError:  # no rename here: fall back to a direct put
            with self.fs.open(path, "wb") as f:
                write(f)
            self.fs.rm_file(tmp)

    def put_fd(self, rel: str, fd: int, length: int, grown_from: int | None = None) -> int:
        def write(f: Any) -> None:
            for chunk in _pread_chunks(fd, 0, length):
                f.write(chunk)

        self._put(rel, write)
        return length

    def write_bytes(self, rel: str, data: bytes) -> None:
        self._put(rel, lambda f: f.write(data))

    def sync_dirs(self) -> None:
        pass

    def forget(self) -> None:
        pass

    def drop_stage(self, rel: str) -> None:
        pass

    def staged(self) -> set[str]:
        return set()

    def read_bytes(self, rel: str) -> bytes:
        return self.fs.cat_file(self._p(rel))

    def size(self, rel: str) -> int | None:
        try:
            return self.fs.size(self._p(rel))
        except FileNotFoundError:
            return None

    def remove(self, rel: str) -> None:
        try:
            self.fs.rm_file(self._p(rel))
        except FileNotFoundError:
            pass

    def stale_temps(self) -> list[str]:
        prefix = self.root + "/"
        return [p[len(prefix) :] for p in self.fs.find(self.root) if p.endswith(_TMP_SUFFIX) and p.startswith(prefix)]


def _make_target(target: str | os.PathLike, fsync: bool = False) -> _LocalTarget | _FsspecTarget:
    s = os.fspath(target)
    if "://" not in s:
        return _LocalTarget(Path(s).expanduser().absolute(), fsync)
    if s.startswith("file://"):
        import fsspec

        _fs, root = fsspec.core.url_to_fs(s)
        return _LocalTarget(Path(root), fsync)
    return _FsspecTarget(s)


# --------------------------------------------------------------------------- the mirror


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


@dataclass
class _Copied:
    """What the target holds for one source file, as of the last copy."""

    size: int  # bytes in the target copy (for a journal segment: up to its last complete line)
    sha256: str
    stat: tuple[int, int, int]  # the source's (st_size, st_mtime_ns, st_ino) when it was copied
    hasher: Any = None  # journal segments: sha256 state after `size` bytes, to extend next time
    tail: bytes = b""  # journal segments: the bytes just before `size`, to check nothing was rewritten


class Mirror:
    """Mirror ``sources`` (name -> local folder) into ``target`` every ``interval_s`` seconds.

    ``manifest_extra`` is called at the start of each tick and its dict goes into the manifest
    under ``"extra"`` (pass e.g. ``lambda: {"journal_last_seq": journal.last_seq}``; since it is
    called before files are copied, the mirrored journal holds at least that many records).

    ``fsync``: fsync each copy, the manifest and their folders (the mirror is the second copy,
    and the journal fsyncs itself, so this is off by default). ``create_target``: create the
    target folder on the first tick if missing (never again afterwards). ``incremental_copies``:
    publish growing journal segments by double buffering on local non-FUSE folders (None: auto).
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
            if not name or "/" in name or "\\" in name or name in (".", "..", MANIFEST_NAME) or _skip_name(name):
                raise ValueError(f"bad source name {name!r}")
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.sources = {name: Path(p) for name, p in sources.items()}
        self.target = os.fspath(target)
        self.interval_s = interval_s
        self.clock = clock
        self.manifest_extra = manifest_extra
        self._create_target = create_target
        self._backend = _make_target(target, fsync)
        if isinstance(self._backend, _LocalTarget) and incremental_copies is not None:
            self._backend._staging = incremental_copies and _renameat2 is not None
        self._copied: dict[str, _Copied] = {}
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
            "target": str(self._backend),
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
            t0 = self.clock()
            result = TickResult()
            try:
                self._tick(result)
            except Exception as exc:  # noqa: BLE001 - the mirror must never kill the run
                result.errors.append(f"{type(exc).__name__}: {exc}")
            result.seconds = self.clock() - t0
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
                    "mirror to %s failed (%d in a row): %s", self._backend, st["consecutive_failures"], st["last_error"]
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
        b = self._backend
        b.ready(create=self._create_target and self._status["last_success"] is None)
        if self._manifest_size is None or b.size(MANIFEST_NAME) != self._manifest_size:
            self._reconcile()  # first tick, or the target was wiped / replaced behind our back

        scanned, missing_roots = self._scan()
        changed = [rel for rel, st in scanned.items() if self._differs(rel, st)]
        result.pending = len(changed)
        for rel in changed:
            src = self.sources[rel.split("/", 1)[0]] / rel.split("/", 1)[1]
            try:
                fd = os.open(src, os.O_RDONLY)
            except (FileNotFoundError, NotADirectoryError):
                result.pending -= 1  # gone since the scan; the next scan drops it
                continue
            try:
                n = self._copy_one(rel, src, fd, scanned[rel])
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
                b.remove(rel)
                result.files_removed += 1

    def _drop_closed_stages(self, scanned: dict[str, os.stat_result]) -> None:
        """Only the newest segment of a journal grows; older ones need no stage copy."""
        staged = self._backend.staged()
        if not staged:
            return
        newest: dict[str, tuple[int, str]] = {}
        for rel in scanned:
            folder, _, name = rel.rpartition("/")
            m = SEGMENT_RE.match(name)
            if m and int(m.group(1)) > newest.get(folder, (-1, ""))[0]:
                newest[folder] = (int(m.group(1)), rel)
        keep = {rel for _, rel in newest.values()}
        for rel in staged - keep:
            self._backend.drop_stage(rel)

    def _scan(self) -> tuple[dict[str, os.stat_result], set[str]]:
        """All mirrorable files: {"name/rel/path": stat}; and the names whose folder is missing."""
        out: dict[str, os.stat_result] = {}
        missing = set()
        for name, root in self.sources.items():
            if not root.is_dir():
                missing.add(name)  # keep what was mirrored: a missing folder is not a deletion
                continue
            stack = [(root, name)]
            while stack:
                d, prefix = stack.pop()
                try:
                    it = os.scandir(d)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                with it:
                    for e in it:
                        if _skip_name(e.name):
                            continue
                        try:
                            if e.is_dir(follow_symlinks=False):
                                stack.append((Path(e.path), f"{prefix}/{e.name}"))
                            elif e.is_file():
                                out[f"{prefix}/{e.name}"] = e.stat()
                        except FileNotFoundError:
                            continue
        return out, missing

    def _differs(self, rel: str, st: os.stat_result) -> bool:
        c = self._copied.get(rel)
        return c is None or c.stat != (st.st_size, st.st_mtime_ns, st.st_ino)

    def _copy_one(self, rel: str, src: Path, fd: int, scanned: os.stat_result | None = None) -> int | None:
        """Copy one changed file; returns bytes written, or None if its content had not changed.

        A journal segment is copied only up to its size when the tick scanned it (``scanned``):
        every other file is copied later, so the mirror never holds a journal that is ahead of
        the files it describes (a restored run finds the world at least as far as its journal).
        """
        st = os.fstat(fd)
        stat_key = (st.st_size, st.st_mtime_ns, st.st_ino)
        prev = self._copied.get(rel)
        is_segment = SEGMENT_RE.match(src.name) is not None
        if is_segment and scanned is not None and scanned.st_ino == st.st_ino and scanned.st_size < st.st_size:
            st = scanned  # grew since the scan: the rest goes next tick (the stat key says so)
            stat_key = (st.st_size, st.st_mtime_ns, st.st_ino)
        if is_segment:
            # Append-only: hash only the new bytes, and copy up to the last complete line.
            incremental = (
                prev is not None
                and prev.hasher is not None
                and prev.stat[2] == st.st_ino
                and st.st_size >= prev.size
                and os.pread(fd, len(prev.tail), prev.size - len(prev.tail)) == prev.tail
            )
            start, hasher = (prev.size, prev.hasher.copy()) if incremental else (0, hashlib.sha256())
            grown_from = start if incremental else None
            new = b"".join(_pread_chunks(fd, start, st.st_size))
            size = start + new.rfind(b"\n") + 1
            hasher.update(memoryview(new)[: size - start])
            tail = os.pread(fd, min(_TAIL, size), size - min(_TAIL, size))
            entry = _Copied(size, hasher.copy().hexdigest(), stat_key, hasher, tail)
        else:
            hasher = hashlib.sha256()
            for chunk in _pread_chunks(fd, 0, st.st_size):
                hasher.update(chunk)
            entry = _Copied(st.st_size, hasher.hexdigest(), stat_key)
            grown_from = None
        if prev is not None and (prev.size, prev.sha256) == (entry.size, entry.sha256):
            self._copied[rel] = entry  # touched, or only an incomplete line is new: nothing to copy
            return None
        written = self._backend.put_fd(rel, fd, entry.size, grown_from)
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
        self._backend.sync_dirs()  # everything listed is durable before the list is
        self._backend.write_bytes(MANIFEST_NAME, data)
        self._backend.sync_dirs()
        self._manifest_size = len(data)
        self._last_extra = extra

    def _reconcile(self) -> None:
        """Adopt what the target already holds (a resumed run, or a target that came back).

        A file counts as mirrored only if the target's manifest lists it with the sha256 of our
        local bytes and the target copy has that size; everything else is copied again.
        """
        b = self._backend
        self._copied.clear()
        self._manifest_size = None
        b.forget()
        try:
            listed = json.loads(b.read_bytes(MANIFEST_NAME)).get("files", {})
        except (OSError, ValueError, AttributeError):
            listed = {}
        for rel in b.stale_temps():
            try:
                b.remove(rel)
            except OSError:
                pass
        scanned, _missing = self._scan()
        for rel, st in scanned.items():
            meta = listed.get(rel)
            if not isinstance(meta, dict) or not isinstance(meta.get("size"), int) or meta["size"] > st.st_size:
                continue
            if b.size(rel) != meta["size"]:
                continue
            src = self.sources[rel.split("/", 1)[0]] / rel.split("/", 1)[1]
            try:
                fd = os.open(src, os.O_RDONLY)
            except OSError:
                continue
            try:
                hasher = hashlib.sha256()
                for chunk in _pread_chunks(fd, 0, meta["size"]):
                    hasher.update(chunk)
                if hasher.hexdigest() != meta.get("sha256"):
                    continue
                is_seg = SEGMENT_RE.match(src.name) is not None
                if meta["size"] != st.st_size and not is_seg:
                    continue
                n = min(_TAIL, meta["size"])
                tail = os.pread(fd, n, meta["size"] - n) if is_seg else b""
                # A segment that has grown since keeps a stat that differs, so its new lines get copied.
                stat_key = (
                    (st.st_size, st.st_mtime_ns, st.st_ino) if meta["size"] == st.st_size else (-1, -1, st.st_ino)
                )
                self._copied[rel] = _Copied(meta["size"], meta["sha256"], stat_key, hasher if is_seg else None, tail)
            finally:
                os.close(fd)


# --------------------------------------------------------------------------- restore


class RestoreError(Exception):
    def __init__(self, message: str, problems: list[str] | None = None):
        self.problems = problems or []
        super().__init__(message + ("".join(f"\n  {p}" for p in self.problems) if self.problems else ""))


@dataclass
class RestoreResult:
    files: list[str] = field(default_factory=list)  # "name/rel" restored
    bytes: int = 0
    unchanged: list[str] = field(default_factory=list)  # already present with the right content
    skipped: list[str] = field(default_factory=list)  # listed, but its source name not in dest_dirs
    extra: Any = None  # the manifest's "extra" (e.g. journal_last_seq)


def restore(
    target: str | os.PathLike, dest_dirs: dict[str, str | os.PathLike], *, overwrite: bool = False
) -> RestoreResult:
    """Copy a mirror back: every file MANIFEST.json lists, verified against its sha256.

    All files are verified (into temporaries beside their destinations) before any is put in
    place, so a bad mirror leaves the workspace untouched. An append-only file that has grown
    since the manifest was written is restored as the listed prefix. Existing files with other
    content raise RestoreError unless ``overwrite``.
    """
    b = _make_target(target)
    try:
        manifest = json.loads(b.read_bytes(MANIFEST_NAME))
        files = manifest["files"]
        assert isinstance(files, dict)
    except FileNotFoundError:
        raise RestoreError(f"no {MANIFEST_NAME} in {b}: not a mirror, or never completed a tick") from None
    except (OSError, ValueError, KeyError, AssertionError) as exc:
        raise RestoreError(f"unreadable {MANIFEST_NAME} in {b}: {exc}") from None
    dests = {name: Path(p).absolute() for name, p in dest_dirs.items()}
    result = RestoreResult(extra=manifest.get("extra"))
    problems: list[str] = []
    staged: list[tuple[Path, Path, str, int]] = []
    try:
        for rel, meta in sorted(files.items()):
            name, _, sub = rel.partition("/")
            if name not in dests:
                result.skipped.append(rel)
                continue
            dest = (dests[name] / sub).absolute()
            if not sub or ".." in Path(sub).parts or Path(sub).is_absolute():
                problems.append(f"{rel}: unsafe path")
                continue
            try:
                size, sha = int(meta["size"]), str(meta["sha256"])
                data = b.read_bytes(rel)
            except (OSError, KeyError, TypeError, ValueError) as exc:
                problems.append(f"{rel}: cannot read: {exc}")
                continue
            if len(data) > size and hashlib.sha256(data[:size]).hexdigest() == sha:
                data = data[:size]  # appended after the manifest was written
            if len(data) != size or hashlib.sha256(data).hexdigest() != sha:
                problems.append(f"{rel}: sha256/size mismatch (got {len(data)} bytes, manifest says {size})")
                continue
            if dest.exists():
                if dest.is_file() and hashlib.sha256(dest.read_bytes()).hexdigest() == sha:
                    result.unchanged.append(rel)
                    continue
                if not overwrite:
                    problems.append(f"{rel}: {dest} exists with other content")
                    continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.restore-tmp")
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            staged.append((tmp, dest, rel, size))
        if problems:
            raise RestoreError(f"restore from {b} failed; nothing was written", problems)
        for tmp, dest, rel, size in staged:
            os.replace(tmp, dest)
            result.files.append(rel)
            result.bytes += size
        for d in {dest.parent for _, dest, _, _ in staged}:
            fd = os.open(d, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return result
    finally:
        for tmp, _dest, _rel, _size in staged:
            tmp.unlink(missing_ok=True)
