"""``cvagents submit``: a candidate enters the workspace's model registry, checked first.

A submission is refused — one line naming the thing at fault, nothing registered — when the
file does not exist, is a folder, or lies outside ``rollout.artifact_folders`` (symlinks
resolved); when the adapter does not import, or its factory raises on the candidate or answers
the first validation query wrongly; when the validation set is missing or malformed; when the
artifact is the champion or a candidate already; when the name is taken. The registered entry is
journaled at the controller's next review (a ``submitted`` decision), like an approval.

``models:/name/3`` (or ``models:/name@alias``) takes the candidate from an MLflow registry
(``cvagents.models.mlflow_source``, an optional extra); ``submit_demo`` trains and submits the
demo's deliberately worse model.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cvagents.config import CoordinationConfig
from cvagents.durability.hashing import sha256_file
from cvagents.errors import CVAgentsError
from cvagents.models import adapter as adapters
from cvagents.models import collection, registry
from cvagents.rollout import lifecycle
from cvagents.rollout.approval import login_name
from cvagents.rollout.controller import in_artifact_folders
from cvagents.workspace import Workspace

MLFLOW_PREFIX = "models:/"
#: the candidate name ``submit_demo`` registers unless told otherwise
DEMO_NAME = "v2"
#: top-k asked of the adapter in the trial query (the gates' NDCG@10)
TRIAL_K = 10


class SubmissionError(CVAgentsError):
    """A candidate file that cannot be submitted: missing, a folder, outside the allowed folders,
    the champion itself."""


def submit_candidate(
    ws: Workspace,
    cfg: CoordinationConfig,
    path_or_uri: str,
    *,
    name: str | None = None,
    adapter: str | None = None,
    by: str | None = None,
    now: str | None = None,
) -> dict[str, Any]:
    """Check and register the candidate at ``path_or_uri`` (a file, relative paths from the current
    folder, or an MLflow ``models:/`` URI); returns its registry entry. ``adapter`` None: the
    configured ``serving.adapter``; ``name`` None: the file's stem."""
    if path_or_uri.startswith(MLFLOW_PREFIX):
        # imported only on this path: MLflow is an optional extra
        mlflow_source = importlib.import_module("cvagents.models.mlflow_source")
        fetched, source = mlflow_source.fetch(path_or_uri, ws, cfg)
        path = _check_file(ws, cfg, Path(fetched), str(fetched))
    else:
        path = _check_file(ws, cfg, Path(path_or_uri).expanduser(), path_or_uri)
        source = {"kind": "file", "uri": ws.rel(path)}
    return _submit(ws, cfg, path, source, name=name, adapter=adapter, by=by, now=now)


def submit_demo(
    ws: Workspace,
    cfg: CoordinationConfig,
    variant: str = "degraded",
    *,
    name: str | None = None,
    by: str | None = None,
    now: str | None = None,
) -> dict[str, Any]:
    """Train the demo's ``variant`` into research/ (on the workspace's demo validation set, or a
    new one with v1's seed) and submit it, named ``v2`` unless ``name`` says otherwise. A model
    trained before is submitted as it is, not trained again."""
    from cvagents.models import train  # torch is imported only when a demo model is made

    if variant not in train.DEMO_CANDIDATES:
        raise SubmissionError(
            f"--demo: unknown demo model {variant!r}; expected one of {sorted(train.DEMO_CANDIDATES)}"
        )
    name = name or DEMO_NAME
    _check_name(ws, cfg, name, sha=None)  # before minutes of training, not after
    path = ws.research_dir / train.DEMO_CANDIDATES[variant]
    if not path.is_file():
        seed = train.demo_seed(ws.validation_dir)
        train.create_artifacts(ws.root, variant, seed, model_file=path.name)
    _check_file(ws, cfg, path, ws.rel(path))
    return _submit(ws, cfg, path, {"kind": "demo", "variant": variant}, name=name, adapter=None, by=by, now=now)


# ------------------------------------------------------------------------------ the checks


def _check_file(ws: Workspace, cfg: CoordinationConfig, path: Path, given: str) -> Path:
    if not path.exists():
        hint = ws.root / given
        also = f" (relative paths are from the current folder: did you mean {hint}?)" if hint.exists() else ""
        raise SubmissionError(f"{given}: no such file{also}")
    if path.is_dir():
        raise SubmissionError(f"{given}: is a folder; submit the model file")
    if not in_artifact_folders(ws, cfg, path, deployed=False):
        folders = ", ".join(str(ws.root / f) for f in cfg.rollout.artifact_folders)
        raise SubmissionError(
            f"{given}: outside the artifact folders ({folders}; symlinks resolved); copy the model there first"
        )
    return path.resolve()


def _check_name(ws: Workspace, cfg: CoordinationConfig, name: str, sha: str | None) -> None:
    registry.check_name(name)
    for c in lifecycle.candidates(ws, cfg):
        if c["name"] == name and c["sha256"] != sha:
            raise registry.RegistryError(
                f"{name}: a candidate of that name is registered already ({c['path']}); choose another with --name"
            )


def _check_new(ws: Workspace, cfg: CoordinationConfig, path: Path, sha: str) -> dict[str, Any] | None:
    """Refuse the champion and a registered candidate; the implicit v1 (the guide's model file,
    not submitted) when ``path`` is it, else None."""
    champion = lifecycle.champion_for(ws, cfg)
    if champion and champion["sha256"] == sha:
        raise SubmissionError(
            f"{ws.rel(path)}: this artifact is the champion live in production "
            f"({champion['name'] or champion['version']}, sha256 {sha[:12]}); submit a new candidate"
        )
    known = next((c for c in lifecycle.candidates(ws, cfg) if c["sha256"] == sha), None)
    if known and not known.get("implicit"):
        raise registry.RegistryError(
            f"{ws.rel(path)}: this artifact (sha256 {sha[:12]}) is registered already as {known['name']}"
        )
    return known


def _trial(spec: str, path: Path, validation: collection.Collection) -> None:
    """Load the candidate through its adapter and ask it the first validation query once."""
    model = adapters.open_adapter(spec, path, validation.folder)
    try:
        try:
            answer = model.query([validation.texts[0]], TRIAL_K)
        except Exception as e:  # noqa: BLE001 - whatever the user's model raises
            raise adapters.AdapterError(
                f"adapter {spec}: the query {validation.ids[0]!r} failed on {path}: {type(e).__name__}: {e}"[:500]
            ) from None
        problem = adapters.answer_problem(answer, 1)
        if problem:
            raise adapters.AdapterError(f"adapter {spec}: query(texts, k) answered wrongly: {problem}")
    finally:
        adapters.close_adapter(model)


def _submit(
    ws: Workspace,
    cfg: CoordinationConfig,
    path: Path,
    source: dict[str, Any],
    *,
    name: str | None,
    adapter: str | None,
    by: str | None,
    now: str | None,
) -> dict[str, Any]:
    spec = adapters.check_spec(adapter, "--adapter") if adapter else cfg.serving.adapter
    adapters.load_factory(spec)
    validation = collection.load(ws.validation_dir)
    sha = sha256_file(path)
    implicit = _check_new(ws, cfg, path, sha)
    name = name or (implicit["name"] if implicit else path.stem)
    _check_name(ws, cfg, name, sha)
    _trial(spec, path, validation)
    return registry.add(
        ws,
        name=name,
        sha256=sha,
        path=ws.rel(path),
        adapter=adapter,
        source=source,
        time=now or datetime.now(UTC).isoformat(timespec="seconds"),
        submitted_by=login_name(by),
    )
