"""The workspace's model registry: every candidate submitted for rollout, one JSON file each
under ``reports/models/candidates/`` (written atomically, under a file lock, never rewritten).

An entry records what was submitted, not what became of it: ``name``, ``seq`` (submission
order), ``sha256`` of the artifact, ``path`` (relative to the workspace), ``adapter`` (None: the
configured ``serving.adapter``), ``source`` (``{"kind": "file" | "demo" | "mlflow", ...}``),
``time`` and ``submitted_by``. What became of it — champion, in rollout, waiting, rejected —
is derived from the deployments and the gates (``cvagents.rollout.lifecycle``), so there is one
source of truth for each.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from filelock import FileLock

from cvagents.durability.atomic import atomic_write_json, read_json
from cvagents.errors import CVAgentsError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
FORMAT = 1


class RegistryError(CVAgentsError):
    """A submission the registry refuses (a bad or taken name, an artifact already registered)."""


def candidates_dir(ws) -> Path:
    return ws.models_dir / "candidates"


def entries(ws) -> list[dict[str, Any]]:
    """Every submitted candidate, in submission order."""
    d = candidates_dir(ws)
    if not d.is_dir():
        return []
    found = [e for e in (read_json(p) for p in d.glob("*.json")) if isinstance(e, dict) and e.get("sha256")]
    return sorted(found, key=lambda e: (e.get("seq", 0), e.get("name", "")))


def by_sha(ws, sha: str | None) -> dict[str, Any] | None:
    return next((e for e in entries(ws) if sha and e["sha256"] == sha), None)


def by_name(ws, name: str) -> dict[str, Any] | None:
    return next((e for e in entries(ws) if e.get("name") == name), None)


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise RegistryError(
            f"--name: expected 1-64 letters, digits, '_', '.' or '-' (starting with a letter or digit), got {name!r}"
        )
    return name


def add(
    ws,
    *,
    name: str,
    sha256: str,
    path: str,
    adapter: str | None,
    source: dict[str, Any],
    time: str,
    submitted_by: str,
) -> dict[str, Any]:
    """Register one candidate; refused if the name or the artifact (sha256) is registered already."""
    check_name(name)
    d = candidates_dir(ws)
    d.mkdir(parents=True, exist_ok=True)
    with FileLock(str(d / ".lock")):
        known = entries(ws)
        for e in known:
            if e["name"] == name:
                raise RegistryError(f"{name}: a candidate of that name is registered already ({e['path']})")
            if e["sha256"] == sha256:
                raise RegistryError(
                    f"{path}: this artifact (sha256 {sha256[:12]}) is registered already as {e['name']}"
                )
        entry = {
            "format": FORMAT,
            "name": name,
            "seq": max((e.get("seq", 0) for e in known), default=0) + 1,
            "sha256": sha256,
            "path": path,
            "adapter": adapter,
            "source": source,
            "time": time,
            "submitted_by": submitted_by,
        }
        atomic_write_json(d / f"{name}.json", entry)
    return entry
