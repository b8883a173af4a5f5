"""Candidates from an MLflow Model Registry, fetched with the real MLflow client from a sqlite
registry in the test's folder (no mock)."""

import json
import sys

import pytest
from mlflow_helpers import client, new_registry, register, register_from_run
from toy_models import write_toy

from cvagents.config import CoordinationConfig
from cvagents.models import mlflow_source, registry
from cvagents.models.mlflow_source import MlflowSourceError, fetch, is_mlflow_uri
from cvagents.workspace import Workspace


def _config(uri: str | None) -> CoordinationConfig:
    return CoordinationConfig(serving={"mlflow_tracking_uri": uri})


@pytest.fixture
def reg(tmp_path, monkeypatch):
    """A registry with model ``m``: version 1 an oracle toy model, version 2 a good one."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = new_registry(tmp_path / "mlflow")
    v1 = write_toy(tmp_path / "toys" / "v1.json", "oracle").read_bytes()
    v2 = write_toy(tmp_path / "toys" / "v2.json", "good").read_bytes()
    assert register(uri, "m", {"model.json": v1}) == "1"
    assert register(uri, "m", {"model.json": v2}) == "2"
    return {"uri": uri, "v1": v1, "v2": v2}


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws")


def _listing(ws) -> list[str]:
    d = ws.research_dir / "candidates"
    return sorted(p.relative_to(d).as_posix() for p in d.rglob("*")) if d.is_dir() else []


def _bad(uri: str, ws, cfg) -> str:
    """The one-line error of fetching ``uri``; nothing was downloaded, kept or registered."""
    before = _listing(ws)
    with pytest.raises(MlflowSourceError) as e:
        fetch(uri, ws, cfg)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(uri)
    assert _listing(ws) == before
    assert registry.entries(ws) == []
    return msg


def test_is_mlflow_uri():
    assert is_mlflow_uri("models:/m/1") and is_mlflow_uri("models:/m@champion")
    assert not is_mlflow_uri("research/v2.pth") and not is_mlflow_uri(None)


def test_fetch_a_version_downloads_its_model_into_research_candidates(reg, ws):
    path, source = fetch("models:/m/1", ws, _config(reg["uri"]))
    assert path == ws.research_dir / "candidates" / "m_v1" / "model.json"
    assert path.read_bytes() == reg["v1"]
    assert source == {"kind": "mlflow", "uri": "models:/m/1", "name": "m", "version": "1", "tracking_uri": reg["uri"]}


def test_fetch_an_alias_takes_the_version_it_points_at(reg, ws):
    client(reg["uri"]).set_registered_model_alias("m", "staging", "2")
    path, source = fetch("models:/m@staging", ws, _config(reg["uri"]))
    assert path == ws.research_dir / "candidates" / "m_v2" / "model.json"
    assert path.read_bytes() == reg["v2"]
    assert source["version"] == "2" and source["alias"] == "staging" and source["uri"] == "models:/m@staging"


def test_the_registry_may_come_from_the_environment(reg, ws, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", reg["uri"])
    path, source = fetch("models:/m/2", ws, _config(None))
    assert path.read_bytes() == reg["v2"] and source["tracking_uri"] == reg["uri"]


def test_fetching_again_reuses_the_download_unless_it_was_changed(reg, ws):
    cfg = _config(reg["uri"])
    path, _ = fetch("models:/m/1", ws, cfg)
    inode = path.stat().st_ino
    again, _ = fetch("models:/m/1", ws, cfg)
    assert again == path and path.stat().st_ino == inode  # the same file: not downloaded again
    path.write_text(json.dumps({"kind": "toy", "quality": "reversed"}))  # damaged since
    again, _ = fetch("models:/m/1", ws, cfg)
    assert again.read_bytes() == reg["v1"]  # its sha256 no longer matched: downloaded again
    assert sorted(p.name for p in (ws.research_dir / "candidates").iterdir()) == ["m_v1"]


def test_a_version_registered_from_a_run(reg, ws, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow falls back on ./mlflow.db when it loses the registry
    assert register_from_run(reg["uri"], "from_run", {"model.pth": b"run weights"}) == "1"
    path, source = fetch("models:/from_run/1", ws, _config(reg["uri"]))
    assert path == ws.research_dir / "candidates" / "from_run_v1" / "model.pth"
    assert path.read_bytes() == b"run weights" and source["version"] == "1"
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()


def test_the_model_file_among_an_mlflow_models_metadata(reg, ws):
    files = {"MLmodel": b"flavors: {}\n", "conda.yaml": b"name: x\n", "requirements.txt": b"torch\n"}
    register(reg["uri"], "logged", {**files, "data/model.pth": b"weights"})
    path, _ = fetch("models:/logged/1", ws, _config(reg["uri"]))
    assert path == ws.research_dir / "candidates" / "logged_v1" / "data" / "model.pth"


def test_several_files_need_the_artifact_tag(reg, ws):
    cfg = _config(reg["uri"])
    register(reg["uri"], "two", {"a.pth": b"a", "b.pth": b"b"})
    assert _bad("models:/two/1", ws, cfg) == (
        "models:/two/1: the version has several files (a.pth, b.pth); tag it cvagents.artifact=<file> to name the model file"
    )
    register(reg["uri"], "two", {"a.pth": b"a2", "b.pth": b"b2"}, tags={"cvagents.artifact": "b.pth"})
    path, _ = fetch("models:/two/2", ws, cfg)
    assert path.name == "b.pth" and path.read_bytes() == b"b2"
    register(reg["uri"], "two", {"a.pth": b"a3"}, tags={"cvagents.artifact": "c.pth"})
    assert (
        _bad("models:/two/3", ws, cfg)
        == "models:/two/3: tag cvagents.artifact='c.pth' names no file of the version (files: a.pth)"
    )


def test_no_registry_configured(reg, ws):
    msg = _bad("models:/m/1", ws, _config(None))
    assert msg == "models:/m/1: no MLflow registry configured (set serving.mlflow_tracking_uri or MLFLOW_TRACKING_URI)"


def test_unknown_model_version_and_alias_are_named(reg, ws):
    cfg = _config(reg["uri"])
    client(reg["uri"]).set_registered_model_alias("m", "champion", "1")
    assert (
        _bad("models:/nope/1", ws, cfg)
        == f"models:/nope/1: no registered model 'nope' in the MLflow registry at {reg['uri']}"
    )
    assert _bad("models:/m/9", ws, cfg) == "models:/m/9: model 'm' has no version 9"
    assert _bad("models:/m@gone", ws, cfg) == "models:/m@gone: model 'm' has no alias 'gone' (its aliases: champion)"
    assert _bad("models:/m", ws, cfg) == "models:/m: expected models:/NAME/VERSION or models:/NAME@ALIAS"


def test_mlflow_not_installed(reg, ws, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow now raises ImportError
    msg = _bad("models:/m/1", ws, _config(reg["uri"]))
    assert msg == "models:/m/1: MLflow is not installed (pip install 'cvagents[mlflow]')"


def test_credentials_never_leave_in_the_source():
    assert (
        mlflow_source.public_uri("https://alice:s3cret-pass@mlflow.example:5000/api")
        == "https://mlflow.example:5000/api"
    )
    assert (
        mlflow_source.public_uri("https://mlflow.example/?access_token=tok12345678")
        == "https://mlflow.example/?access_token=[REDACTED]"
    )
    assert mlflow_source.public_uri("sqlite:////tmp/x/mlflow.db") == "sqlite:////tmp/x/mlflow.db"
