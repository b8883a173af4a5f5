"""The mirror's one storage seam: ``MirrorTarget``.

A target holds the mirror's copy: a local folder (``folder_target``, e.g. the mounted Google
Drive) or any fsspec URL (``fsspec_target``). Its one write, ``put``, replaces a file whole
(never in place, so a reader never sees half of one); ``read_bytes``, ``size`` and ``remove``
are what a restore and a resumed mirror need; the rest are hooks with no-op defaults.

Layout on every target::

    <target>/<source name>/<path relative to that source>
    <target>/MANIFEST.json        written last, after every file it lists is in place
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cvagents.errors import CVAgentsError

MANIFEST_NAME = "MANIFEST.json"
MANIFEST_FORMAT = "cvagents-mirror/1"
TMP_SUFFIX = ".mirror-tmp"  # a copy being written, hidden until it is renamed into place
STAGE_SUFFIX = ".mirror-stage"  # a folder target's previous copy of a growing file, kept to top up
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileSlice:
    """The first ``length`` bytes of the open file ``fd`` (a source file as the mirror scanned it)."""

    fd: int
    length: int


class MirrorTarget(Protocol):
    """Where a mirror's copy lives. Subclass it to inherit the no-op hooks."""

    def put(self, rel: str, src: FileSlice | bytes, *, grown_from: int | None = None) -> int:
        """Replace ``rel`` with ``src`` whole; return the bytes written. ``grown_from``: the
        file is append-only and unchanged up to there since it was last put (a target may then
        write only the new bytes)."""
        ...

    def read_bytes(self, rel: str) -> bytes:
        """The file's bytes (``FileNotFoundError`` if there is none)."""
        ...

    def size(self, rel: str) -> int | None:
        """The file's size, or None if there is none."""
        ...

    def remove(self, rel: str) -> None:
        """Delete the file if it is there."""
        ...

    def ready(self, create: bool) -> None:
        """Check the target is there before a tick (``create``: make its folder if missing)."""
        return None

    def reset(self) -> None:
        """The target is adopted afresh (a first tick, or it was wiped): forget what was cached
        about it and remove scratch files an earlier process left behind."""
        return None

    def sync(self) -> None:
        """Make what was put so far durable (before the manifest that lists it is written)."""
        return None

    def drop_stage(self, rel: str) -> None:
        """``rel`` will not grow again (a closed journal segment): drop any copy kept to top it up."""
        return None

    def close(self) -> None:
        return None


def pread_chunks(fd: int, start: int, end: int) -> Iterator[bytes]:
    """Bytes [start, end) of ``fd`` in chunks of at most 1 MiB; raises if the file shrank."""
    pos = start
    while pos < end:
        chunk = os.pread(fd, min(_CHUNK, end - pos), pos)
        if not chunk:
            raise OSError(f"source file shrank while being copied (at byte {pos} of {end})")
        yield chunk
        pos += len(chunk)


def open_target(target: str | os.PathLike, *, fsync: bool = False, incremental: bool | None = None) -> MirrorTarget:
    """The target for a folder path, a ``file://`` URL or any other fsspec URL.

    ``incremental``: publish growing files by double buffering on local non-FUSE folders (None:
    decide from the folder's filesystem). The implementations are imported here, when chosen.
    """
    from cvagents.durability.folder_target import FolderTarget

    s = os.fspath(target)
    if "://" not in s:
        return FolderTarget(Path(s).expanduser().absolute(), fsync, incremental)
    import fsspec

    if s.startswith("file://"):
        _fs, root = fsspec.core.url_to_fs(s)
        return FolderTarget(Path(root), fsync, incremental)
    from cvagents.durability.fsspec_target import FsspecTarget

    return FsspecTarget(s)


class MirrorTargetError(CVAgentsError):
    """A mirror target that cannot work; refused before the run creates anything."""


def check_target(target: str | os.PathLike, *, workspace: Path, copied: Mapping[str, Path], where: str) -> None:
    """Refuse, naming ``where`` the target came from, a target that cannot work: the workspace
    itself or a folder inside one the mirror copies (``copied``: every tick would copy the mirror
    into itself and grow), ``memory://`` (it vanishes with the process), and an fsspec protocol
    whose backend package is not installed (named, to install)."""
    s = os.fspath(target)
    if "://" in s and not s.startswith("file://"):
        _check_protocol(s, where)
        return
    folder = Path(s.removeprefix("file://")).expanduser().resolve()
    ws = Path(workspace).resolve()
    if folder == ws:
        raise MirrorTargetError(
            f"{where}: {s} is the workspace itself; mirror to a folder outside it (e.g. on Google Drive)"
        )
    for src in copied.values():
        src = Path(src).resolve()
        if folder == src or folder.is_relative_to(src):
            raise MirrorTargetError(
                f"{where}: {s} is inside {src}, a folder the mirror copies: every tick would copy the mirror "
                "into itself and grow; mirror to a folder outside it"
            )


def _check_protocol(url: str, where: str) -> None:
    protocol = url.split("://", 1)[0].split("::")[-1]
    if protocol == "memory":
        raise MirrorTargetError(
            f"{where}: {url}: memory:// keeps the mirror in this process's memory and it vanishes with the "
            "process; mirror to a folder (e.g. the mounted Google Drive) or a lasting fsspec URL"
        )
    try:
        import fsspec
    except ImportError:
        raise MirrorTargetError(f"{where}: {url} needs fsspec: pip install fsspec") from None
    try:
        fsspec.get_filesystem_class(protocol)
    except ImportError:
        from fsspec.registry import known_implementations

        known = known_implementations.get(protocol, {})
        package = str(known.get("class", protocol)).split(".")[0]
        raise MirrorTargetError(
            f"{where}: {url}: the {protocol}:// backend is not installed: pip install {package}"
        ) from None
    except ValueError:
        raise MirrorTargetError(f"{where}: {url}: fsspec knows no protocol {protocol!r}") from None
