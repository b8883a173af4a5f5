"""Any fsspec filesystem as a mirror target: write a temporary object, then ``mv`` it into
place (or write it directly where the filesystem cannot rename)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cvagents.durability.mirror_target import TMP_SUFFIX, FileSlice, MirrorTarget, pread_chunks


class FsspecTarget(MirrorTarget):
    def __init__(self, url: str):
        import fsspec

        self.url = url
        self.fs, root = fsspec.core.url_to_fs(url)
        self.root = root.rstrip("/")

    def __str__(self) -> str:
        return self.url

    def _p(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def put(self, rel: str, src: FileSlice | bytes, *, grown_from: int | None = None) -> int:
        def write(f: Any) -> None:
            if isinstance(src, bytes):
                f.write(src)
            else:
                for chunk in pread_chunks(src.fd, 0, src.length):
                    f.write(chunk)

        self._put(rel, write)
        return len(src) if isinstance(src, bytes) else src.length

    def _put(self, rel: str, write: Callable[[Any], None]) -> None:
        path = self._p(rel)
        parent, _, name = path.rpartition("/")
        tmp = f"{parent}/.{name}{TMP_SUFFIX}"
        self.fs.makedirs(parent, exist_ok=True)
        with self.fs.open(tmp, "wb") as f:
            write(f)
        try:
            self.fs.mv(tmp, path)
        except NotImplementedError:  # no rename here: fall back to a direct put
            with self.fs.open(path, "wb") as f:
                write(f)
            self.fs.rm_file(tmp)

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

    def ready(self, create: bool) -> None:
        # Folders are often virtual here (object stores): there is no "unmounted" to guard against.
        self.fs.makedirs(self.root, exist_ok=True)

    def reset(self) -> None:
        prefix = self.root + "/"
        for p in self.fs.find(self.root):
            if p.endswith(TMP_SUFFIX) and p.startswith(prefix):
                try:
                    self.fs.rm_file(p)
                except OSError:  # gone already: the next reset tries again
                    pass
