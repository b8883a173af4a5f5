"""The compute engine seam without a running Ray: the ``compute:`` config, the default that never
imports Ray, and a cluster that cannot be reached failing the step before it starts."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from rollout_helpers import call, make_ctx
from toy_models import toy_env

from cvagents.config import ConfigError, CoordinationConfig, load_coordination_config
from cvagents.models.compute import LocalEngine, engine_for, shards


def test_shards_depend_on_the_size_alone():
    assert shards(10, 4) == [(0, 4), (4, 8), (8, 10)] and shards(0, 4) == [] and shards(3, 5) == [(0, 3)]
    assert isinstance(engine_for(CoordinationConfig().compute), LocalEngine)


@pytest.mark.parametrize(
    "key, value, why",
    [
        ("engine", "spark", "compute.engine: input should be 'local' or 'ray'"),
        ("address", "http://head:10001", 'compute.address: expected "auto", "ray://host:port" or empty'),
        ("workers", 0, "compute.workers: input should be greater than or equal to 1"),
        ("num_gpus", -1, "compute.num_gpus: input should be greater than or equal to 0"),
    ],
)
def test_a_bad_compute_value_is_one_line_naming_file_and_key(config_copy, key, value, why):
    path = config_copy / "configs" / "autonomous_coordination.yaml"
    text = path.read_text()
    default = {"engine": "local", "address": '""', "workers": "null", "num_gpus": "0"}[key]
    path.write_text(text.replace(f"  {key}: {default} ", f"  {key}: {value} ", 1))
    with pytest.raises(ConfigError) as e:
        load_coordination_config(path)
    assert str(e.value).startswith(f"{path}: {why}") and "\n" not in str(e.value)


def test_the_default_engine_never_imports_ray(tmp_path):
    code = f"""
import sys
from pathlib import Path
from toy_models import write_collection, write_toy, SPEC
from cvagents.config import load_coordination_config
from cvagents.models.compute import engine_for
from cvagents.models.evaluate import evaluate_model
import cvagents.execution.tools.traffic, cvagents.execution.evaluators
cfg = load_coordination_config(Path({str(__import__("cvagents").__file__)!r}).parent / "defaults/configs/autonomous_coordination.yaml")
engine = engine_for(cfg.compute)
engine.connect()
vs = write_collection(Path({str(tmp_path)!r}) / "vs", queries=10)
m = evaluate_model(write_toy(Path({str(tmp_path)!r}) / "m.json"), vs, adapter=SPEC, engine=engine, bootstrap_samples=10)
assert m["ndcg_at_10"] == 1.0
print("ray" in sys.modules, cfg.compute.engine)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=toy_env(), timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "local"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("tool, args", [("run_evaluation", {}), ("replay_traffic", {"stage": "shadow"})])
def test_an_unreachable_cluster_fails_the_step_before_it_starts(tmp_path, tool, args):
    pytest.importorskip("ray", reason="the Ray engine's tests need the ray extra: pip install cvagents[ray]")
    address = f"ray://127.0.0.1:{_closed_port()}"
    cfg = CoordinationConfig.model_validate({"compute": {"engine": "ray", "address": address}})
    ctx = make_ctx(tmp_path / "ws", cfg)
    if tool == "replay_traffic":
        assert call(ctx, "deploy_model", "m#deploy", model_path="research/v1_production.pth", stage="shadow").ok
    out = call(ctx, tool, "m#1", **args)
    assert out.status == "failed" and not out.ok
    message = out.result["error"]
    assert message.startswith(f"compute.address {address}: cannot reach the Ray cluster (") and "\n" not in message
    assert not list(ctx.workspace.evaluations_dir.glob("*.json"))  # nothing measured, nothing recorded
