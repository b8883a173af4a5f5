"""create_v1_artifacts makes the guide's V1 model only: the variant argument that made a degraded
model nothing ever rolled out is gone (``cvagents submit --demo degraded`` replaces it)."""

from cvagents.config import CoordinationConfig
from cvagents.durability.hashing import sha256_file
from cvagents.execution.tools import ToolContext, default_registry
from cvagents.workspace import Workspace


def test_create_takes_no_variant_and_leaves_existing_artifacts_alone(tmp_path):
    reg = default_registry()
    spec = next(s for s in reg.specs() if s.name == "create_v1_artifacts")
    assert spec.parameters.get("properties", {}) == {} and "variant" not in spec.description
    cfg = CoordinationConfig()
    ws = Workspace.from_config(tmp_path / "ws", cfg).create()
    ws.model_file.write_bytes(b"model-bytes-v1")
    (ws.validation_dir / "dataset_info.json").parent.mkdir(parents=True, exist_ok=True)
    (ws.validation_dir / "dataset_info.json").write_text("{}")
    ctx = ToolContext(ws, cfg, action_key="m#1")
    o = reg.call(ctx, "create_v1_artifacts", {"variant": "degraded"})
    assert o.status == "failed" and "argument variant: Extra inputs are not permitted" in o.result["error"]
    assert not (ws.research_dir / "v1_degraded.pth").exists()
    ctx.action_key = "m#2"
    o = reg.call(ctx, "create_v1_artifacts", {})
    assert o.status == "succeeded", o.result
    assert o.result["already_present"] is True and o.result["model_path"] == "research/v1_production.pth"
    assert o.result["sha256"] == sha256_file(ws.model_file)
