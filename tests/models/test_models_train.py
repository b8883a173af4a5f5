"""create_artifacts: files, quality of v1 and degraded, determinism, the shipped evaluation script.

One v1 and one degraded model are trained for the whole module (~25 s on 2 cores).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import cvagents
from cvagents.durability.hashing import sha256_file
from cvagents.models import create_artifacts, data, evaluate_model, load_checkpoint
from cvagents.models.train import ensure_validation_set, train

REPO = Path(cvagents.__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    ws = tmp_path_factory.mktemp("ws")
    v1 = create_artifacts(ws, variant="v1", seed=0)
    degraded = create_artifacts(ws, variant="degraded", seed=0)
    return ws, v1, degraded


def test_files_written_as_in_the_guide(workspace):
    ws, v1, _ = workspace
    assert (ws / "research" / "v1_production.pth").is_file()
    assert (ws / "research" / "v1_degraded.pth").is_file()
    assert (ws / "research" / "evaluate_model.py").is_file()
    vdir = ws / "data" / "validation_set"
    info = json.loads((vdir / "dataset_info.json").read_text())
    for key in ("name", "version", "seed", "counts", "relevance_scale", "files", "created"):
        assert key in info
    assert info["seed"] == 0 and info["counts"]["queries"] >= 300 and info["counts"]["gallery_images"] >= 1000
    assert set(info["relevance_scale"]) == {"0", "1", "2", "3"}
    for f in info["files"]:
        assert sha256_file(vdir / f["name"]) == f["sha256"]
    assert v1["model_sha256"] == sha256_file(v1["model_path"])
    assert v1["validation_created"] is True


def test_v1_passes_the_gate_and_degraded_does_not(workspace):
    ws, v1, degraded = workspace
    assert v1["validation_ndcg_at_10"] >= 0.72
    assert degraded["validation_ndcg_at_10"] < 0.72
    assert degraded["validation_created"] is False  # reused, same seed
    m = evaluate_model(ws / "research" / "v1_degraded.pth", ws / "data" / "validation_set", bootstrap_samples=200)
    assert m["ndcg_at_10"] == pytest.approx(degraded["validation_ndcg_at_10"], abs=1e-6)
    assert m["ndcg_at_10_ci95"][1] < 0.72
    assert m["model_variant"] == "degraded"


def test_training_is_fast_enough(workspace):
    _, v1, _ = workspace
    assert v1["total_seconds"] < 120


def test_checkpoints_load_safely_with_same_architecture(workspace):
    ws, _, _ = workspace
    raw = torch.load(ws / "research" / "v1_production.pth", weights_only=True)
    assert raw["metadata"]["variant"] == "v1" and raw["metadata"]["seed"] == 0
    assert "created" in raw["metadata"] and raw["metadata"]["train"]["steps"] > 0
    good = load_checkpoint(ws / "research" / "v1_production.pth")
    bad = load_checkpoint(ws / "research" / "v1_degraded.pth")
    assert good.config == bad.config and good.vocab == bad.vocab
    assert good.weights_sha256() == raw["metadata"]["weights_sha256"]


def test_training_is_deterministic_given_the_seed():
    a, _ = train("v1", seed=3, steps=10)
    b, _ = train("v1", seed=3, steps=10)
    assert a.weights_sha256() == b.weights_sha256()


def test_validation_data_is_deterministic_and_regenerated_for_another_seed(tmp_path):
    x, y = (
        data.generate_validation(5, num_items=50, num_queries=20),
        data.generate_validation(5, num_items=50, num_queries=20),
    )
    assert torch.equal(x.images, y.images) and x.queries == y.queries and torch.equal(x.relevance, y.relevance)
    _, created = ensure_validation_set(tmp_path, seed=1)
    assert created
    _, created = ensure_validation_set(tmp_path, seed=1)
    assert not created
    _, created = ensure_validation_set(tmp_path, seed=2)
    assert created and data.read_info(tmp_path)["seed"] == 2
    (tmp_path / "qrels.json").write_text("{}")  # tampered: no longer matches dataset_info.json
    vs, created = ensure_validation_set(tmp_path, seed=2)
    assert created and int(vs.relevance.max()) == 3


def _start_script(*args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(
        [sys.executable, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def _finish(proc):
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def test_shipped_script_prints_the_same_metrics(workspace):
    ws, _, _ = workspace
    model, vdir = ws / "research" / "v1_production.pth", ws / "data" / "validation_set"
    script = ws / "research" / "evaluate_model.py"
    # both runs at once (each spends most of its time importing torch)
    explicit = _start_script(script, "--model", model, "--validation-set", vdir, "--bootstrap", "200")
    defaults = _start_script(script, "--bootstrap", "0")  # no paths: the workspace layout next to the script
    direct = evaluate_model(model, vdir, bootstrap_samples=200)
    code, out, err = _finish(explicit)
    assert code == 0, err
    printed = json.loads(out)
    assert printed["ndcg_at_10"] == direct["ndcg_at_10"]
    assert printed["ndcg_at_10_ci95"] == direct["ndcg_at_10_ci95"]
    assert printed["model_sha256"] == direct["model_sha256"]
    assert "latencies_ms" not in printed
    code, out, err = _finish(defaults)
    assert code == 0, err
    assert json.loads(out)["ndcg_at_10"] == direct["ndcg_at_10"]


def test_shipped_script_fails_clearly_on_a_missing_file(workspace, tmp_path):
    ws, _, _ = workspace
    script = ws / "research" / "evaluate_model.py"
    code, out, err = _finish(
        _start_script(script, "--model", tmp_path / "nope.pth", "--validation-set", ws / "data" / "validation_set")
    )
    assert code == 1 and "model file not found" in err and out == ""
    code, out, err = _finish(
        _start_script(script, "--model", ws / "research" / "v1_production.pth", "--validation-set", tmp_path)
    )
    assert code == 1 and "validation set not found" in err
