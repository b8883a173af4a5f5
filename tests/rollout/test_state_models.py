"""The agents' view of the candidates stays bounded: the snapshot goes into every prompt."""

from cvagents.config import CoordinationConfig
from cvagents.models import registry
from cvagents.rollout.state import CANDIDATES_IN_VIEW, snapshot
from cvagents.workspace import Workspace


def test_the_snapshot_shows_the_latest_candidates_and_always_the_active_one(tmp_path):
    cfg = CoordinationConfig()
    ws = Workspace.from_config(tmp_path / "ws", cfg).create()
    for i in range(12):
        registry.add(
            ws,
            name=f"c{i:02d}",
            sha256=f"{i:064x}",
            path=f"research/c{i:02d}.json",
            adapter=None,
            source={"kind": "file"},
            time="t",
            submitted_by="test",
        )
    models = snapshot(ws, cfg)["models"]
    names = [c["name"] for c in models["candidates"]]
    assert models["active"]["name"] == "c00"  # the earliest waiting one is worked on first
    assert names == ["c00", *[f"c{i:02d}" for i in range(12 - CANDIDATES_IN_VIEW, 12)]]
