"""What the monitors read from: a workspace folder, or a mirror of one (a Google Drive copy).

A ``Source`` takes the workspace's paths from the layout its run left in ``meta/workspace.json``
(``cvagents.workspace.Workspace.open``): readers never keep their own copy of a path, a stage
name or a threshold. Nothing here raises on a half-synced file: a file that cannot be read is
noted in ``Source.missing`` and the dashboard says the copy is partly mirrored.

A folder holding ``MANIFEST.json`` at its top is a mirror (see ``cvagents.durability.mirror``):
files it lists may not have reached this machine yet (Google Drive lags), and its ``written_at``
says when the run last changed anything.

Repeated refreshes re-read what changed only: a file's parsed content and a folder's listing are
kept while its (mtime, size, inode) stays the same.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from cvagents.config import CoordinationConfig
from cvagents.workspace import DESCRIPTOR as _DESCRIPTOR
from cvagents.workspace import META_DIR, Workspace, WorkspaceError

if TYPE_CHECKING:
    import pandas as pd  # imported where used: the monitors' import stays light

MANIFEST = "MANIFEST.json"
SIM_TIME = "time (simulated)"  # a table column holding the run's clock (meetings, heartbeats, decisions)
DESCRIPTOR = f"{META_DIR}/{_DESCRIPTOR}"


def _parse_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


# Bounded: one entry per file or folder read.
_CACHE: dict[str, tuple[tuple, Any]] = {}
_CACHE_MAX = 2048


def _stamp(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _cached(path: Path, compute: Callable[[], Any]) -> Any:
    key, stamp = str(path), _stamp(path)
    if stamp is None:
        return compute()
    hit = _CACHE.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    value = compute()
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[key] = (stamp, value)
    return value


def utc(s: Any) -> pd.Timestamp | None:
    """A run's timestamp (naive stamps are the run's UTC clock) as a naive UTC Timestamp."""
    import pandas as pd

    if not s:
        return None
    try:
        t = pd.Timestamp(s)
    except (ValueError, TypeError):
        return None
    return t.tz_convert("UTC").tz_localize(None) if t.tzinfo else t


def short_time(s: Any) -> str:
    """``2025-10-13T20:00:00.123+00:00`` -> ``2025-10-13 20:00:00`` (the run's clock, UTC)."""
    t = utc(s)
    return t.strftime("%Y-%m-%d %H:%M:%S") if t is not None else ("" if s is None else str(s))


def _listdir(path: Path) -> tuple[str, ...]:
    try:
        with os.scandir(path) as it:
            return tuple(e.name for e in it)
    except OSError:
        return ()


def _read_manifest(path: Path) -> tuple[dict | None, dict[str, set[str]]]:
    """The mirror's manifest, and folder -> names of the files it lists there."""
    manifest = _parse_json(path)
    listed: dict[str, set[str]] = {}
    for rel in (manifest or {}).get("files", {}):
        folder, _, name = rel.rpartition("/")
        listed.setdefault(folder, set()).add(name)
    return manifest, listed


WORKSPACE_ENV = "CVAGENTS_WORKSPACE"


def choose_workspace(workspace: str | os.PathLike | None, default: str | os.PathLike) -> str:
    """The folder a monitor notebook reads: its ``workspace`` parameter when set, else
    ``?workspace=<folder>`` in the page's address (Voilà puts it in ``$QUERY_STRING``), else
    ``$CVAGENTS_WORKSPACE``, else ``default``."""
    if workspace:
        return str(workspace)
    from urllib.parse import parse_qs

    query = parse_qs(os.environ.get("QUERY_STRING", "")).get("workspace")
    if query and query[0]:
        return query[0]
    return os.environ.get(WORKSPACE_ENV) or str(default)


@cache
def default_config() -> CoordinationConfig:
    """The layout, stages and gates of a workspace written before it described itself."""
    return CoordinationConfig()


@dataclass(frozen=True)
class Paths:
    """The files and folders the monitors read, relative to the workspace (or mirror) root."""

    metrics: str
    rollout_state: str
    costs: str
    controller: str
    decisions: str
    handoff: str
    planning: str
    execution: str
    sessions: str
    log: str

    @classmethod
    def of(cls, ws: Workspace) -> Paths:
        def rel(p: Path) -> str:
            try:
                return p.relative_to(ws.root).as_posix()
            except ValueError:  # a layout path outside the workspace
                return str(p)

        return cls(
            metrics=rel(ws.metrics_file),
            rollout_state=rel(ws.rollout_state_file),
            costs=rel(ws.costs_file),
            controller=rel(ws.controller_file),
            decisions=rel(ws.decisions_file),
            handoff=rel(ws.handoff_file),
            planning=rel(ws.planning_dir),
            execution=rel(ws.execution_dir),
            sessions=rel(ws.sessions_dir),
            log=rel(ws.log_file),
        )


class Source:
    """A workspace folder, or a mirror of one; remembers which files it could not read.

    ``ws`` is the workspace as its run laid it out (its ``config`` holds the stages and gates);
    ``paths`` the files the monitors read, relative to ``root``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser()
        self.missing: list[str] = []
        mf = self.root / MANIFEST
        self.is_mirror = mf.exists()
        self.manifest, self._listed = _cached(mf, lambda: _read_manifest(mf)) if self.is_mirror else (None, {})
        self._prefix: dict[str, str] = {}
        self.ws = Workspace(self.root, self._config())
        self.paths = Paths.of(self.ws)
        self._prefix = self._mirror_prefixes()

    @property
    def config(self) -> CoordinationConfig:
        return self.ws.config

    @property
    def stages(self) -> tuple[str, ...]:
        return self.ws.stages

    def _config(self) -> CoordinationConfig:
        """The run's config from its descriptor; the defaults without one, or (noted as missing)
        while it cannot be read."""
        path = self.path(DESCRIPTOR)
        try:
            cfg = _cached(path, lambda: Workspace.open(self.root, default_config()).config)
        except WorkspaceError:
            cfg = None
        if cfg is None or (cfg is default_config() and self.listed(DESCRIPTOR)):
            self.missing.append(DESCRIPTOR)  # listed by the mirror, not arrived (or torn) yet
        return cfg or default_config()

    def _mirror_prefixes(self) -> dict[str, str]:
        """The mirror names each source folder as the workspace does; an older mirror named the
        metrics folder (``runs/report``) by its last part (``report``)."""
        folder = PurePosixPath(self.paths.metrics).parent
        full, short = str(folder), folder.name
        out = {}
        if full != short and self._listed and not any(f == full or f.startswith(full + "/") for f in self._listed):
            if any(f == short or f.startswith(short + "/") for f in self._listed):
                out[full] = short
        return out

    def _rel(self, rel: str) -> str:
        for a, b in self._prefix.items():
            if rel == a or rel.startswith(a + "/"):
                return b + rel[len(a) :]
        return rel

    def path(self, rel: str) -> Path:
        return self.root / self._rel(rel)

    def listed(self, rel: str) -> bool:
        folder, _, name = self._rel(rel).rpartition("/")
        return name in self._listed.get(folder, ())

    def listed_folders(self, folder: str, prefix: str) -> set[str]:
        """Names of the sub-folders of ``folder`` (starting with ``prefix``) the manifest lists files in."""
        top = self._rel(folder) + "/"
        return {f[len(top) :].split("/")[0] for f in self._listed if f.startswith(top + prefix)}

    def json(self, rel: str) -> Any:
        """A JSON file's content, or None (noted as missing when the manifest lists it).
        Callers must not modify it: an unchanged file's content is shared between refreshes."""
        path = self.path(rel)
        data = _cached(path, lambda: _parse_json(path))
        if data is None and (self.listed(rel) or self.path(rel).exists()):
            self.missing.append(rel)
        return data

    def names(self, folder: str, prefix: str, suffix: str) -> list[str]:
        """File names in ``folder`` (on disk, or listed by the manifest), oldest first by name."""
        path = self.path(folder)
        on_disk = _cached(path, lambda: _listdir(path))  # a folder's mtime changes when a file is added
        found = {n for n in on_disk if n.startswith(prefix) and n.endswith(suffix)}
        found |= {n for n in self._listed.get(self._rel(folder), ()) if n.startswith(prefix) and n.endswith(suffix)}
        return sorted(found)

    def newest_json(self, folder: str, prefix: str, n: int, after: str | None = None) -> list[tuple[str, Any]]:
        """``(name, content)`` of the newest ``n`` JSON files (names sort by time), oldest first."""
        names = self.names(folder, prefix, ".json")
        if after is not None:
            names = [x for x in names if x > after]
        out = []
        for name in names[-n:] if n else []:
            data = self.json(f"{folder}/{name}")
            if data is not None:
                out.append((name, data))
        return out

    def tail_lines(self, rel: str, n: int, max_bytes: int = 65536) -> list[str]:
        """The last ``n`` lines of a text file, reading at most ``max_bytes`` from its end."""
        try:
            with open(self.path(rel), "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - max_bytes))
                data = f.read()
        except OSError:
            return []
        lines = data.decode("utf-8", "replace").splitlines()
        if size > max_bytes:
            lines = lines[1:]  # the first line is probably cut
        return lines[-n:]

    def mtime(self, rel: str) -> float | None:
        try:
            return self.path(rel).stat().st_mtime
        except OSError:
            return None
