"""The MLflow champion alias follows production: promotion sets it, a rollback moves it back, and
nothing is set or journaled twice. A real MLflow registry (sqlite, in the test's folder)."""

import logging
import socket

import pytest
from mlflow_helpers import client, new_registry, register
from toy_models import write_toy

from cvagents.config import CoordinationConfig
from cvagents.durability.hashing import sha256_file
from cvagents.models import registry
from cvagents.models.mlflow_source import fetch
from cvagents.rollout import champion_alias, decisions, deployment
from cvagents.rollout import controller as rollout
from cvagents.workspace import Workspace


def _aliases(uri: str, name: str = "m") -> dict[str, str]:
    return {k: str(v) for k, v in client(uri).get_registered_model(name).aliases.items()}


def _alias_decisions(ws) -> list[dict]:
    return [d for d in decisions.read(ws) if d["kind"] == "alias"]


def _submit(ws, path, source, name):
    return registry.add(
        ws,
        name=name,
        sha256=sha256_file(path),
        path=ws.rel(path),
        adapter=None,
        source=source,
        time="t0",
        submitted_by="test",
    )


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """A workspace whose registry holds versions 1 and 2 of MLflow model ``m``."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = new_registry(tmp_path / "mlflow")
    register(uri, "m", {"model.json": write_toy(tmp_path / "toys" / "a.json", "oracle").read_bytes()})
    register(uri, "m", {"model.json": write_toy(tmp_path / "toys" / "b.json", "good").read_bytes()})
    cfg = CoordinationConfig(serving={"mlflow_tracking_uri": uri})
    ws = Workspace(tmp_path / "ws", cfg)
    paths = {}
    for v in ("1", "2"):
        path, source = fetch(f"models:/m/{v}", ws, cfg)
        _submit(ws, path, source, f"m_v{v}")
        paths[v] = path
    return ws, cfg, uri, paths, ws.stage_dir("production")


def test_promotion_sets_the_alias_and_a_rollback_moves_it_back(setup):
    ws, cfg, uri, paths, prod = setup
    assert champion_alias.reconcile(ws, cfg, now="t0") is None  # nothing in production yet
    assert _aliases(uri) == {} and _alias_decisions(ws) == []

    first = deployment.install(prod, paths["1"], source_label="m_v1", action_id="a1", time="t1")
    out = champion_alias.reconcile(ws, cfg, now="t1")
    assert out["errors"] == [] and [d["outcome"] for d in out["decisions"]] == ["set"]
    assert _aliases(uri) == {"champion": "1"}
    d = _alias_decisions(ws)[-1]
    assert (d["model"], d["model_version"], d["alias"], d["version"], d["sha256"]) == (
        "m",
        "1",
        "champion",
        first["version"],
        first["sha256"],
    )
    assert d["tracking_uri"] == uri and d["stage"] is None and d["time"] == "t1"

    assert champion_alias.reconcile(ws, cfg, now="t1b") is None  # idempotent: nothing new to do
    assert len(_alias_decisions(ws)) == 1

    deployment.install(prod, paths["2"], source_label="m_v2", action_id="a2", time="t2")
    out = champion_alias.reconcile(ws, cfg, now="t2")
    assert [d["outcome"] for d in out["decisions"]] == ["set"]
    assert out["decisions"][0]["previous_model_version"] == "1"
    assert _aliases(uri) == {"champion": "2"}

    deployment.point_to(prod, first["version"], action_id="rb", time="t3", reason="rollback of m_v2")
    out = champion_alias.reconcile(ws, cfg, now="t3")
    assert [(d["outcome"], d["model_version"]) for d in out["decisions"]] == [("set", "1")]
    assert _aliases(uri) == {"champion": "1"}

    assert champion_alias.reconcile(ws, cfg, now="t4") is None
    assert champion_alias.reconcile(ws, cfg, now="t5") is None
    assert [d["model_version"] for d in _alias_decisions(ws)] == ["1", "2", "1"]


def test_an_alias_already_in_place_is_recorded_not_set_again(setup):
    ws, cfg, uri, paths, prod = setup
    client(uri).set_registered_model_alias("m", "champion", "1")
    deployment.install(prod, paths["1"], source_label="m_v1", action_id="a1", time="t1")
    out = champion_alias.reconcile(ws, cfg, now="t1")
    assert [d["outcome"] for d in out["decisions"]] == ["already_set"]
    assert _aliases(uri) == {"champion": "1"}
    assert champion_alias.reconcile(ws, cfg, now="t2") is None


def test_the_configured_alias_name_is_used(setup):
    ws, cfg, uri, paths, prod = setup
    cfg = cfg.model_copy(update={"serving": cfg.serving.model_copy(update={"champion_alias": "prod"})})
    deployment.install(prod, paths["2"], source_label="m_v2", action_id="a1", time="t1")
    champion_alias.reconcile(ws, cfg, now="t1")
    assert _aliases(uri) == {"prod": "2"}


def test_a_champion_from_elsewhere_takes_the_alias_back_from_the_mlflow_version(setup, tmp_path):
    ws, cfg, uri, paths, prod = setup
    deployment.install(prod, paths["1"], source_label="m_v1", action_id="a1", time="t1")
    champion_alias.reconcile(ws, cfg, now="t1")
    plain = write_toy(ws.research_dir / "plain.json", "reversed")
    _submit(ws, plain, {"kind": "file"}, "plain")
    deployment.install(prod, plain, source_label="plain", action_id="a2", time="t2")
    out = champion_alias.reconcile(ws, cfg, now="t2")
    assert [(d["outcome"], d["model_version"]) for d in out["decisions"]] == [("removed", None)]
    assert _aliases(uri) == {}
    assert champion_alias.reconcile(ws, cfg, now="t3") is None


def test_the_controller_reconciles_after_its_review_and_journals_the_decision(setup):
    ws, cfg, uri, paths, prod = setup
    deployment.install(prod, paths["1"], source_label="m_v1", action_id="a1", time="t1")
    journaled = []
    made = rollout.after_heartbeat(ws, cfg, "t1", record=lambda kind, data: journaled.append((kind, data)))
    assert _aliases(uri) == {"champion": "1"}
    aliased = [d for d in made if d["kind"] == "alias"]
    assert len(aliased) == 1 and aliased[0] in [data for _, data in journaled]
    assert {kind for kind, _ in journaled} == {decisions.JOURNAL_KIND}
    again = rollout.after_heartbeat(ws, cfg, "t2")
    assert not [d for d in again if d["kind"] == "alias"] and len(_alias_decisions(ws)) == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_registry_is_a_warning_not_a_crash(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    server = f"http://127.0.0.1:{_closed_port()}"
    cfg = CoordinationConfig(serving={"mlflow_tracking_uri": server})
    ws = Workspace(tmp_path / "ws", cfg)
    model = write_toy(ws.research_dir / "candidates" / "m_v1" / "model.json")
    source = {"kind": "mlflow", "uri": "models:/m/1", "name": "m", "version": "1", "tracking_uri": server}
    _submit(ws, model, source, "m_v1")
    prod = ws.stage_dir("production")
    deployment.install(prod, model, source_label="m_v1", action_id="a1", time="t1")
    with caplog.at_level(logging.WARNING, logger="cvagents.rollout.champion_alias"):
        out = champion_alias.reconcile(ws, cfg, now="t1")
    assert out["decisions"] == [] and len(out["errors"]) == 1
    err = out["errors"][0]
    assert err.startswith(f"models:/m@champion: alias not reconciled with the MLflow registry at {server}: ")
    assert "\n" not in err and err in caplog.text
    assert _alias_decisions(ws) == []  # nothing journaled: the next review tries again
    assert deployment.live(prod)["version"]  # production untouched


def test_a_candidate_from_another_registry_is_not_touched(setup, tmp_path):
    ws, cfg, uri, paths, prod = setup
    other = new_registry(tmp_path / "other")
    cfg = cfg.model_copy(update={"serving": cfg.serving.model_copy(update={"mlflow_tracking_uri": other})})
    deployment.install(prod, paths["1"], source_label="m_v1", action_id="a1", time="t1")
    out = champion_alias.reconcile(ws, cfg, now="t1")
    assert out["decisions"] == [] and len(out["errors"]) == 1
    assert f"the candidate came from {uri}, the configured registry is {other}" in out["errors"][0]
    assert _aliases(uri) == {} and _alias_decisions(ws) == []
