"""``cvagents submit`` as a user meets it: a candidate registered with its sha256, source, adapter
and time; every bad input one line naming the thing, exit 2, nothing registered, nothing
deployed. Real processes, toy models (tests/toy_models.py) loaded through their adapter."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from cli_helpers import one_line_error, tree
from toy_models import SPEC, toy_env, write_collection, write_toy

from cvagents.durability.hashing import sha256_file
from cvagents.rollout import deployment
from cvagents.workspace import Workspace


def submit(ws: Path, *args, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cvagents", "submit", "--workspace", str(ws), "--json", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=toy_env(),
        cwd=cwd,
    )


@pytest.fixture
def ws(tmp_path) -> Path:
    """A workspace with a toy validation set and a good toy model in research/."""
    root = tmp_path / "ws"
    write_collection(root / "data" / "validation_set")
    write_toy(root / "research" / "m.json")
    return root


def candidates(ws: Path) -> dict[str, bytes]:
    """The registry's files (empty when nothing was ever registered)."""
    d = ws / "reports" / "models" / "candidates"
    return tree(d) if d.is_dir() else {}


def assert_refused(ws: Path, p: subprocess.CompletedProcess, before: dict[str, bytes], *words: str) -> str:
    line = one_line_error(p)
    for w in words:
        assert w in line, line
    assert candidates(ws) == before  # nothing registered
    dep = ws / "deployment"
    assert not dep.exists() or not any(dep.rglob("*.json"))  # nothing deployed
    return line


def test_a_good_candidate_is_registered_with_sha_source_adapter_and_time(ws):
    p = submit(ws, ws / "research" / "m.json", "--adapter", SPEC, "--by", "alice")
    assert p.returncode == 0, p.stderr
    entry = json.loads(p.stdout)
    assert entry["name"] == "m"
    assert entry["sha256"] == sha256_file(ws / "research" / "m.json")
    assert entry["path"] == "research/m.json"
    assert entry["source"] == {"kind": "file", "uri": "research/m.json"}
    assert entry["adapter"] == SPEC and entry["submitted_by"] == "alice"
    assert datetime.fromisoformat(entry["time"]).tzinfo is not None
    stored = json.loads((ws / "reports" / "models" / "candidates" / "m.json").read_text())
    assert stored == entry


def test_submitting_the_same_artifact_again_is_refused(ws):
    assert submit(ws, ws / "research" / "m.json", "--adapter", SPEC).returncode == 0
    before = candidates(ws)
    p = submit(ws, ws / "research" / "m.json", "--adapter", SPEC, "--name", "again")
    assert_refused(ws, p, before, "research/m.json:", "registered already as m")


def test_submitting_the_champion_is_refused(ws):
    champ = write_toy(ws / "research" / "champ.json", quality="good")
    w = Workspace(ws)
    deployment.install(w.stage_dir("production"), champ, source_label="research/champ.json", action_id="t#1", time="t")
    before = candidates(ws)
    p = submit(ws, champ, "--adapter", SPEC)
    line = one_line_error(p)
    assert "research/champ.json:" in line and "is the champion live in production" in line, line
    assert candidates(ws) == before == {}
    assert deployment.live(w.stage_dir("production"))["sha256"] == sha256_file(champ)  # unchanged
    assert not (ws / "deployment" / "shadow").exists()


def test_a_taken_name_asks_for_another(ws):
    assert submit(ws, ws / "research" / "m.json", "--adapter", SPEC).returncode == 0
    other = write_toy(ws / "research" / "sub" / "m.json", quality="good")  # same stem, other model
    before = candidates(ws)
    p = submit(ws, other, "--adapter", SPEC)
    assert_refused(ws, p, before, "error: m:", "--name")
    p = submit(ws, other, "--adapter", SPEC, "--name", "m2")
    assert p.returncode == 0 and json.loads(p.stdout)["name"] == "m2"


def test_a_factory_that_raises_is_refused_with_the_models_own_message(ws):
    bad = write_toy(ws / "research" / "bad.json", fail="load")
    p = submit(ws, bad, "--adapter", SPEC)
    assert_refused(ws, p, {}, f"adapter {SPEC} failed to load", "toy model asked to fail on load")


def test_a_model_whose_query_raises_is_refused(ws):
    bad = write_toy(ws / "research" / "bad.json", fail="query")
    p = submit(ws, bad, "--adapter", SPEC)
    assert_refused(ws, p, {}, f"adapter {SPEC}", "q000", "toy model asked to fail every query")


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda ws: ws / "research" / "nothing.json", ["research/nothing.json: no such file"]),
        (lambda ws: ws / "research", ["research: is a folder"]),
        (lambda ws: write_toy(ws.parent / "outside.json"), ["outside.json: outside the artifact folders"]),
        (lambda ws: write_toy(ws / "data" / "m.json"), ["data/m.json: outside the artifact folders"]),
    ],
    ids=["missing", "folder", "outside", "other-workspace-folder"],
)
def test_bad_paths_are_refused(ws, make, words):
    p = submit(ws, make(ws), "--adapter", SPEC)
    assert_refused(ws, p, {}, *words)


def test_a_symlink_out_of_the_artifact_folders_is_refused(ws):
    target = write_toy(ws.parent / "elsewhere.json")
    os.symlink(target, ws / "research" / "link.json")
    p = submit(ws, ws / "research" / "link.json", "--adapter", SPEC)
    assert_refused(ws, p, {}, "research/link.json: outside the artifact folders", "symlinks resolved")


def test_a_relative_path_is_from_the_current_folder_and_the_error_says_so(ws):
    p = submit(ws, "research/m.json", "--adapter", SPEC, cwd=ws.parent)
    assert_refused(ws, p, {}, "research/m.json: no such file", f"did you mean {ws / 'research' / 'm.json'}")
    p = submit(ws, "research/m.json", "--adapter", SPEC, cwd=ws)
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize(
    "spec, words",
    [
        ("not a spec", ["--adapter: expected \"package.module:factory\", got 'not a spec'"]),
        ("no_such_module_xyz:load", ["adapter no_such_module_xyz:load: cannot import no_such_module_xyz"]),
        ("toy_models:nothing", ["adapter toy_models:nothing: toy_models has no callable nothing"]),
    ],
)
def test_an_adapter_that_does_not_import_is_refused(ws, spec, words):
    p = submit(ws, ws / "research" / "m.json", "--adapter", spec)
    assert_refused(ws, p, {}, *words)


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda v: (v / "queries.json").unlink(), ["queries.json: not found"]),
        (lambda v: (v / "qrels.json").write_text('{"q000": {"d0001": "high"}}'), ["qrels.json: q000.d0001"]),
        (lambda v: (v / "dataset_info.json").write_text("[1, 2"), ["dataset_info.json: not valid JSON"]),
        (lambda v: [f.unlink() for f in v.iterdir()], ["dataset_info.json: not found"]),
    ],
    ids=["no-queries", "bad-grade", "bad-info", "empty"],
)
def test_a_validation_set_in_the_wrong_format_is_refused(ws, damage, words):
    damage(ws / "data" / "validation_set")
    p = submit(ws, ws / "research" / "m.json", "--adapter", SPEC)
    assert_refused(ws, p, {}, *words)


def test_path_and_demo_together_or_neither_are_refused(ws):
    assert_refused(ws, submit(ws), {}, "error: submit: give the candidate's PATH")
    p = submit(ws, ws / "research" / "m.json", "--demo", "degraded")
    assert_refused(ws, p, {}, "error: submit: give the candidate's PATH")


def test_create_artifacts_has_no_variant_flag_any_more(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "cvagents", "create-artifacts", "--workspace", str(tmp_path / "w"), "--variant", "v1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2 and "unrecognized arguments: --variant" in p.stderr
    assert not (tmp_path / "w").exists()


def test_demo_degraded_trains_and_submits_v2_which_waits(tmp_path, trained_artifacts):
    """End to end (~7 s of training): the deliberately worse demo model, on v1's validation set."""
    ws = tmp_path / "ws"
    for sub in ("research", "data"):
        shutil.copytree(trained_artifacts / sub, ws / sub)
    val_before = tree(ws / "data" / "validation_set")
    p = submit(ws, "--demo", "degraded", "--by", "demo", timeout=600)
    assert p.returncode == 0, p.stderr
    entry = json.loads(p.stdout)
    assert entry["name"] == "v2" and entry["path"] == "research/v2_degraded.pth"
    assert entry["source"] == {"kind": "demo", "variant": "degraded"} and entry["adapter"] is None
    assert entry["sha256"] == sha256_file(ws / "research" / "v2_degraded.pth")
    assert tree(ws / "data" / "validation_set") == val_before  # v1's set, reused as it was
    status = subprocess.run(
        [sys.executable, "-m", "cvagents", "status", "--workspace", str(ws), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    models = json.loads(status.stdout)["models"]
    by_name = {c["name"]: c for c in models["candidates"]}
    assert by_name["v2"]["status"] == "waiting" and by_name["v1"]["status"] == "waiting"
    assert models["champion"] is None
    # the name is taken now: a second --demo says so before training anything
    before = candidates(ws)
    again = submit(ws, "--demo", "degraded")
    assert_refused(ws, again, before, "error: v2:", "--name")


def test_an_mlflow_uri_with_no_registry_configured_is_refused(ws):
    pytest.importorskip("mlflow", reason="needs the mlflow extra: pip install -e '.[mlflow]'")
    env = {k: v for k, v in toy_env().items() if k != "MLFLOW_TRACKING_URI"}
    p = subprocess.run(
        [sys.executable, "-m", "cvagents", "submit", "--workspace", str(ws), "models:/ranker/3"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    line = assert_refused(ws, p, {}, "models:/ranker/3: no MLflow registry configured")
    assert "serving.mlflow_tracking_uri" in line and not (ws / "research" / "candidates").exists()
