"""A real MLflow Model Registry for tests: a sqlite store in the test's folder.

Creating a store runs MLflow's schema migrations (seconds), so an empty migrated database is
made once per test process and copied for each test that wants a fresh registry. Importing this
module skips the importing test module when MLflow is not installed.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest

pytest.importorskip(
    "mlflow", reason="MLflow is not installed: pip install 'cvagents[mlflow]' (CI installs it via requirements-dev.txt)"
)

from mlflow import MlflowClient  # noqa: E402

_template: Path | None = None


def _uri(db: Path) -> str:
    return f"sqlite:///{db}"


def new_registry(folder: Path) -> str:
    """The tracking/registry URI of a fresh, empty MLflow registry under ``folder``."""
    global _template
    if _template is None:
        d = Path(tempfile.mkdtemp(prefix="cvagents-mlflow-"))
        atexit.register(shutil.rmtree, d, True)
        MlflowClient(tracking_uri=_uri(d / "mlflow.db"), registry_uri=_uri(d / "mlflow.db")).search_registered_models()
        _template = d / "mlflow.db"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_template, folder / "mlflow.db")
    return _uri(folder / "mlflow.db")


def client(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def register(uri: str, name: str, files: dict[str, bytes], *, tags: dict[str, str] | None = None) -> str:
    """A new version of registered model ``name`` whose artifacts are ``files`` (written to a
    folder beside the registry's database); returns the version number."""
    c = client(uri)
    if not c.search_registered_models(filter_string=f"name = '{name}'"):
        c.create_registered_model(name)
    n = len(c.search_model_versions(f"name = '{name}'")) + 1
    src = Path(uri.removeprefix("sqlite:///")).parent / "sources" / f"{name}_{n}"
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    mv = c.create_model_version(name, str(src), tags=tags)
    assert str(mv.version) == str(n)
    return str(mv.version)


def register_from_run(uri: str, name: str, files: dict[str, bytes]) -> str:
    """A new version of ``name`` registered from a run's logged artifacts (``runs:/<id>/model``),
    as ``mlflow.register_model`` does; the run's artifacts live beside the registry's database."""
    c = client(uri)
    root = Path(uri.removeprefix("sqlite:///")).parent
    exp = c.get_experiment_by_name("cvagents-tests")
    exp_id = exp.experiment_id if exp else c.create_experiment("cvagents-tests", (root / "artifacts").as_uri())
    run = c.create_run(exp_id)
    staged = root / "staged" / run.info.run_id
    for rel, data in files.items():
        (staged / rel).parent.mkdir(parents=True, exist_ok=True)
        (staged / rel).write_bytes(data)
    c.log_artifacts(run.info.run_id, str(staged), "model")
    c.set_terminated(run.info.run_id)
    if not c.search_registered_models(filter_string=f"name = '{name}'"):
        c.create_registered_model(name)
    mv = c.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    return str(mv.version)
