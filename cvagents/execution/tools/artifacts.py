"""create_v1_artifacts and check_files."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from cvagents.durability.hashing import sha256_file
from cvagents.execution.tools.paths import inside
from cvagents.execution.tools.registry import Tool, ToolContext, ToolFailed


class CreateArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


def create_v1_artifacts(ctx: ToolContext, args: CreateArgs) -> dict:
    ws = ctx.workspace
    model = ws.model_file
    if model.is_file() and (ws.validation_dir / "dataset_info.json").is_file():
        return {
            "already_present": True,
            "model_path": ws.rel(model),
            "sha256": sha256_file(model),
            "validation_set": ws.rel(ws.validation_dir),
        }
    from cvagents.models import create_artifacts  # torch is imported only when a model is made

    summary = create_artifacts(ws.root)
    return {"already_present": False, **summary}


class CheckArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    paths: list[str] = Field(
        default_factory=list, description="paths relative to the workspace; empty: the essential files"
    )


def check_files(ctx: ToolContext, args: CheckArgs) -> dict:
    ws = ctx.workspace
    paths = [inside(ws.root, p) for p in args.paths] if args.paths else ws.essential_files()
    found = {ws.rel(p): p.exists() for p in paths}
    for rel, ok in found.items():
        ctx.log.info("[TOOL] File check: %s -> %s", rel, "found" if ok else "NOT FOUND")
    missing = [p for p, ok in found.items() if not ok]
    if missing:
        raise ToolFailed(f"missing: {', '.join(missing)}")
    return {"files": found, "all_present": True}


TOOLS = [
    Tool(
        "create_v1_artifacts",
        "Create the V1 model (research/v1_production.pth) and its validation set (data/validation_set/), training it on synthetic data. Does nothing if they exist.",
        CreateArgs,
        create_v1_artifacts,
    ),
    Tool(
        "check_files",
        "Check that files exist in the workspace (default: the model, metrics.json, the validation set's dataset_info.json).",
        CheckArgs,
        check_files,
    ),
]
