"""A local folder as a mirror target, e.g. the mounted Google Drive: write a temporary file,
fsync it (optional), rename it into place.

Where the folder's filesystem can exchange two names atomically and is not FUSE (so not Drive,
which must only ever see whole new files), a growing journal segment is published by double
buffering instead of a full copy: the previous copy, swapped out to a hidden
``.<name>.mirror-stage``, is topped up with the new bytes and swapped back in. A put then costs
what was appended, not the size of the open segment.

A target folder that vanishes (Drive unmounted, folder deleted) is not silently re-created on
local disk: only sub-folders are made, one level at a time below the root.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cvagents.durability.atomic import fsync_dir
from cvagents.durability.mirror_target import STAGE_SUFFIX, TMP_SUFFIX, FileSlice, MirrorTarget, pread_chunks

DRIVE_MOUNT = Path("/content/drive")


def _load_renameat2() -> Any:
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not Linux, or glibc < 2.28
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn


_renameat2 = _load_renameat2()
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2
CAN_EXCHANGE = _renameat2 is not None  # this platform can swap two names atomically


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
    for chunk in pread_chunks(src, pos, end):
        os.pwrite(dst, chunk, pos)
        pos += len(chunk)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class FolderTarget(MirrorTarget):
    """``staging``: double-buffer growing files (None: where the filesystem allows it)."""

    def __init__(self, root: Path, fsync: bool, staging: bool | None = None):
        self.root = root
        self.fsync = fsync
        self._dirty_dirs: set[Path] = set()
        self._known_dirs: set[Path] = set()
        self._staging = None if staging is None else staging and CAN_EXCHANGE  # None: decided on first use
        self._published: dict[str, int] = {}  # rel -> bytes in the copy under its real name
        self._stages: dict[str, int] = {}  # rel -> bytes in its hidden stage copy (a prefix)

    def __str__(self) -> str:
        return str(self.root)

    # ---- the seam

    def put(self, rel: str, src: FileSlice | bytes, *, grown_from: int | None = None) -> int:
        if isinstance(src, bytes):
            self._write_new(rel, lambda out: _write_all(out, src), len(src), keep_old=False)
            return len(src)
        if grown_from is not None:
            written = self._top_up(rel, src.fd, src.length)
            if written is not None:
                return written
        self._write_new(
            rel, lambda out: _copy_range(src.fd, out, 0, src.length), src.length, keep_old=grown_from is not None
        )
        return src.length

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

    def ready(self, create: bool) -> None:
        if self.root.is_relative_to(DRIVE_MOUNT) and not os.path.ismount(DRIVE_MOUNT):
            raise OSError(f"Google Drive is not mounted at {DRIVE_MOUNT}; not writing to {self.root}")
        if not self.root.is_dir():
            if not create:
                raise FileNotFoundError(f"mirror target folder is missing: {self.root}")
            self.root.mkdir(parents=True, exist_ok=True)
            self._forget()
        if self._staging is None:
            fstype = _fs_type(self.root) or "unknown"
            self._staging = CAN_EXCHANGE and not fstype.startswith("fuse") and fstype != "unknown"

    def reset(self) -> None:
        self._forget()
        for dirpath, _dirs, files in os.walk(self.root):
            for f in files:
                if f.endswith((TMP_SUFFIX, STAGE_SUFFIX)):
                    try:
                        os.unlink(os.path.join(dirpath, f))
                    except OSError:  # gone already, or not ours to delete: the next reset tries again
                        pass

    def sync(self) -> None:
        """fsync the folders renamed into, so the renames themselves are durable."""
        if self.fsync:
            for d in self._dirty_dirs:
                fsync_dir(d)
        self._dirty_dirs.clear()

    def drop_stage(self, rel: str) -> None:
        if self._stages.pop(rel, None) is not None:
            self._stage_path(rel).unlink(missing_ok=True)

    # ---- writing a copy

    def _forget(self) -> None:
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
        return path, parent / f".{path.name}{TMP_SUFFIX}"

    def _stage_path(self, rel: str) -> Path:
        path = self.root / rel
        return path.parent / f".{path.name}{STAGE_SUFFIX}"

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
        """Bring the stage copy of ``rel`` up to ``length`` and swap it in; None if there is none."""
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
