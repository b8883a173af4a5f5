"""Candidates from an MLflow Model Registry: ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS``.

``fetch`` resolves the URI with the real ``mlflow.MlflowClient`` (the registry named by
``serving.mlflow_tracking_uri``, else the ``MLFLOW_TRACKING_URI`` environment variable),
downloads the version's artifacts into ``research/candidates/<name>_v<version>/`` and returns the
model file in it with the candidate's ``source``. A second fetch of the same version reuses the
download when every file still matches the sha256 recorded beside it (a registered version's
artifacts never change).

Which file is the model: the file named by the version's ``cvagents.artifact`` tag (a path
relative to the version's artifacts); else the one file left once MLflow's own model metadata
(``MLmodel``, ``conda.yaml``, ``requirements.txt``, ...) is set aside; else an error listing them.

``set_alias``, ``delete_alias`` and ``aliased_version`` are the registry calls the rollout uses to
keep the champion alias on the version serving production (``cvagents.rollout.champion_alias``).

MLflow is an optional extra (``pip install 'cvagents[mlflow]'``): it is imported only here, only
when a ``models:/`` URI is used.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cvagents.durability.atomic import atomic_write_json, read_json
from cvagents.durability.hashing import sha256_file
from cvagents.errors import CVAgentsError
from cvagents.secrets import redact

SCHEME = "models:/"
URI = re.compile(r"models:/(?P<name>[^/@]+)(?:/(?P<version>[0-9]+)|@(?P<alias>[^/@]+))/?")
#: the version tag that names the model file among several
ARTIFACT_TAG = "cvagents.artifact"
#: what MLflow writes beside a logged model, never the model file itself
MLFLOW_METADATA = frozenset(
    {
        "MLmodel",
        "conda.yaml",
        "python_env.yaml",
        "requirements.txt",
        "registered_model_meta",
        "input_example.json",
        "serving_input_example.json",
    }
)
#: the record of a download, beside its files: which version, and the sha256 of each file
DOWNLOAD_RECORD = ".cvagents_download.json"
INSTALL_HINT = "pip install 'cvagents[mlflow]'"


class MlflowSourceError(CVAgentsError):
    """A ``models:/`` URI that cannot be resolved or fetched (its message starts with the URI)."""


def is_mlflow_uri(s: object) -> bool:
    return isinstance(s, str) and s.startswith(SCHEME)


def public_uri(uri: str) -> str:
    """``uri`` without credentials (``user:password@`` and key-shaped query values)."""
    parts = urlsplit(uri)
    if "@" in parts.netloc:  # urlunsplit would also turn sqlite:////abs into sqlite://abs: only when needed
        uri = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return redact(uri)


def tracking_uri(cfg) -> str | None:
    """The registry to use: ``serving.mlflow_tracking_uri``, else ``MLFLOW_TRACKING_URI``, else None."""
    return cfg.serving.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or None


def _client(what: str, uri: str):
    try:
        from mlflow import MlflowClient
    except ImportError:
        raise MlflowSourceError(f"{what}: MLflow is not installed ({INSTALL_HINT})") from None
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def one_line(e: BaseException) -> str:
    """An exception's message on one line (MLflow's span several), redacted, at most 300 characters."""
    text = " ".join(str(e).split()) or type(e).__name__
    return redact(text[:300])


def parse(uri: str) -> tuple[str, str | None, str | None]:
    """``(name, version, alias)`` of a ``models:/`` URI (exactly one of version, alias)."""
    m = URI.fullmatch(uri)
    if not m:
        raise MlflowSourceError(f"{uri}: expected models:/NAME/VERSION or models:/NAME@ALIAS")
    return m["name"], m["version"], m["alias"]


def _resolve(client, uri: str, name: str, version: str | None, alias: str | None, where: str):
    """The registered model version a URI names, or a one-line error naming what is missing."""
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(name)
    except MlflowException as e:
        if e.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise MlflowSourceError(f"{uri}: no registered model {name!r} in the MLflow registry at {where}") from None
        raise MlflowSourceError(f"{uri}: MLflow registry at {where}: {one_line(e)}") from None
    except Exception as e:  # noqa: BLE001 — an unreachable server, a bad store URI: one line for the user
        raise MlflowSourceError(f"{uri}: MLflow registry at {where}: {one_line(e)}") from None
    if alias is not None:
        aliases = {str(k): str(v) for k, v in (model.aliases or {}).items()}
        if alias not in aliases:
            known = ", ".join(sorted(aliases)) or "none"
            raise MlflowSourceError(f"{uri}: model {name!r} has no alias {alias!r} (its aliases: {known})")
        version = aliases[alias]
    try:
        mv = client.get_model_version(name, version)
    except MlflowException as e:
        if e.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise MlflowSourceError(f"{uri}: model {name!r} has no version {version}") from None
        raise MlflowSourceError(f"{uri}: MLflow registry at {where}: {one_line(e)}") from None
    except Exception as e:  # noqa: BLE001
        raise MlflowSourceError(f"{uri}: MLflow registry at {where}: {one_line(e)}") from None
    if str(mv.status) != "READY":
        raise MlflowSourceError(f"{uri}: version {mv.version} of {name!r} is {mv.status}, not READY")
    return mv


def _files(folder: Path) -> list[str]:
    return sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != DOWNLOAD_RECORD
    )


def _intact(dest: Path, name: str, version: str) -> bool:
    rec = read_json(dest / DOWNLOAD_RECORD)
    if not rec or rec.get("name") != name or rec.get("version") != version:
        return False
    files = rec.get("files") or {}
    return bool(files) and sorted(files) == _files(dest) and all(sha256_file(dest / f) == s for f, s in files.items())


def _download(client, uri: str, reg: str, name: str, version: str, dest: Path) -> None:
    """The version's artifacts into ``dest``, whole or not at all. From the version's own
    download location: MLflow resolves a ``models:/`` URI with the process-wide registry, not
    the one this fetch was given."""
    import mlflow.artifacts

    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        location = client.get_model_version_download_uri(name, version)
        got = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=location, dst_path=str(partial), tracking_uri=reg, registry_uri=reg
            )
        )
        root = got if got.is_dir() else partial  # a folder's download lands in dst_path/<its name>
        files = _files(root)
        if not files:
            raise MlflowSourceError(f"{uri}: version {version} of {name!r} has no artifacts")
        record = {"name": name, "version": version, "files": {f: sha256_file(root / f) for f in files}}
        atomic_write_json(root / DOWNLOAD_RECORD, record)
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        root.replace(dest)
        shutil.rmtree(partial, ignore_errors=True)
    except MlflowSourceError:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    except Exception as e:  # noqa: BLE001 — a download that fails leaves nothing behind
        shutil.rmtree(partial, ignore_errors=True)
        raise MlflowSourceError(f"{uri}: downloading version {version} of {name!r} failed: {one_line(e)}") from None


def model_file(uri: str, folder: Path, tags: dict[str, str] | None = None) -> Path:
    """The model file among a version's downloaded artifacts (see the module's docstring)."""
    files = _files(folder)
    named = (tags or {}).get(ARTIFACT_TAG)
    if named:
        if named not in files:
            raise MlflowSourceError(
                f"{uri}: tag {ARTIFACT_TAG}={named!r} names no file of the version (files: {', '.join(files)})"
            )
        return folder / named
    models = [f for f in files if Path(f).name not in MLFLOW_METADATA] or files
    if len(models) != 1:
        raise MlflowSourceError(
            f"{uri}: the version has several files ({', '.join(models)}); "
            f"tag it {ARTIFACT_TAG}=<file> to name the model file"
        )
    return folder / models[0]


def fetch(uri: str, ws, cfg) -> tuple[Path, dict[str, Any]]:
    """Download the model version a ``models:/`` URI names into ``research/candidates/`` (once)
    and return its model file and the candidate's ``source``."""
    name, version, alias = parse(uri)
    reg = tracking_uri(cfg)
    if not reg:
        raise MlflowSourceError(
            f"{uri}: no MLflow registry configured (set serving.mlflow_tracking_uri or MLFLOW_TRACKING_URI)"
        )
    where = public_uri(reg)
    client = _client(uri, reg)
    mv = _resolve(client, uri, name, version, alias, where)
    version = str(mv.version)
    dest = ws.research_dir / "candidates" / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}_v{version}"
    if not _intact(dest, name, version):
        _download(client, uri, reg, name, version, dest)
    try:
        path = model_file(uri, dest, {str(k): str(v) for k, v in (mv.tags or {}).items()})
    except MlflowSourceError:
        shutil.rmtree(dest, ignore_errors=True)  # a refused candidate leaves nothing behind
        raise
    source = {"kind": "mlflow", "uri": uri, "name": name, "version": version, "tracking_uri": where}
    if alias is not None:
        source["alias"] = alias
    return path, source


# ------------------------------------------------------------------ aliases (the rollout's calls)


def aliased_version(name: str, alias: str, reg: str) -> str | None:
    """The version of registered model ``name`` that holds ``alias``, or None."""
    aliases = _client(f"models:/{name}@{alias}", reg).get_registered_model(name).aliases or {}
    v = aliases.get(alias)
    return None if v is None else str(v)


def set_alias(source: dict[str, Any], alias: str, reg: str) -> None:
    """Point ``alias`` of the candidate's registered model at its version (MLflow moves it)."""
    name, version = source["name"], str(source["version"])
    _client(f"models:/{name}/{version}", reg).set_registered_model_alias(name, alias, version)


def delete_alias(name: str, alias: str, reg: str) -> None:
    _client(f"models:/{name}@{alias}", reg).delete_registered_model_alias(name, alias)
