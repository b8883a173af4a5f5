"""End to end, on the offline team: the BM25 example — a model none of us wrote, loaded only
through its adapter — submitted as a candidate and rolled from shadow to production; its broken
twins (random ranking; 60 ms per query) submitted the same way and stopped at shadow by the gates.

The coordinator runs in-process on a ManualClock, with the repo's configs, as in
tests/rollout/test_degraded.py. Cost: the slow twin's shadow evidence is real — every evaluated
and replayed query sleeps 60 ms (about 1,200 queries: ~75 s).
"""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `examples` is importable from the repo root, as its README says
pytest.importorskip("rank_bm25", reason="needs the examples extra (rank-bm25): pip install -e '.[examples]'")

from cvagents.clock import ManualClock  # noqa: E402
from cvagents.config import Settings  # noqa: E402
from cvagents.durability.hashing import sha256_file  # noqa: E402
from cvagents.models import collection, registry  # noqa: E402
from cvagents.offline.provider import OfflineProvider  # noqa: E402
from cvagents.planning.team import build_teams  # noqa: E402
from cvagents.rollout import decisions, deployment  # noqa: E402
from cvagents.rollout.lifecycle import ModelStatus, candidates  # noqa: E402
from cvagents.run.coordinator import Coordinator, RunOptions  # noqa: E402
from cvagents.workspace import Workspace  # noqa: E402
from examples.bm25 import make_validation_set, setup_workspace  # noqa: E402

# TODO(merge): remove once evaluation and the traffic replay go through the candidate's adapter.
pytestmark = pytest.mark.skip(reason="needs the adapter-based replay; un-skipped at merge")

# one meeting to plan shadow, then one per stage: a healthy stage gathers its evidence (evaluate,
# replay, drill) in one execution phase; two spare
MEETINGS_TO_PRODUCTION = 8


def submit(root: Path, settings: Settings, name: str, adapter: str) -> tuple[Workspace, str]:
    """Lay the example out in ``root`` and register the candidate ``name`` (as `cvagents submit`)."""
    paths = setup_workspace.setup(root)
    ws = Workspace.from_config(root, settings.coordination).create()
    sha = sha256_file(paths[name])
    registry.add(
        ws,
        name=name,
        sha256=sha,
        path=ws.rel(paths[name]),
        adapter=adapter,
        source={"kind": "file", "uri": str(paths[name])},
        time="2026-01-01T00:00:00Z",
        submitted_by="test",
    )
    return ws, sha


def run(settings: Settings, root: Path, meetings: int) -> Coordinator:
    teams = build_teams(settings, lambda name, cfg: OfflineProvider())
    c = Coordinator(settings, root, RunOptions(meetings=meetings, console=False), teams, clock=ManualClock())
    try:
        result = c.run()
    finally:
        c.close()
    assert result["status"] == "finished" and result["meetings"] == meetings, result
    return c


def the(cands: list[dict], name: str) -> dict:
    (c,) = [c for c in cands if c["name"] == name]
    return c


def untouched_by_the_demo(ws: Workspace) -> None:
    """The team worked on the submitted model: it trained no demo model over the example's set."""
    assert not ws.model_file.exists()
    assert collection.load(ws.validation_dir).info["name"] == make_validation_set.NAME


def test_the_bm25_model_rolls_out_from_shadow_to_production(tmp_path, project_root):
    settings = Settings(project_root)
    ws, sha = submit(tmp_path / "ws", settings, setup_workspace.GOOD, "examples.bm25.adapter:load")
    c = run(settings, ws.root, MEETINGS_TO_PRODUCTION)
    cfg, stages = c.cfg, list(c.cfg.rollout.stages)
    bm25 = the(candidates(ws, cfg), setup_workspace.GOOD)
    assert bm25["status"] == ModelStatus.CHAMPION and bm25["stage"] == stages[-1], bm25
    assert deployment.live(ws.stage_dir(stages[-1]))["sha256"] == sha
    ds = decisions.read(ws)
    assert [d["stage"] for d in ds if d["kind"] == "promotion" and d["sha256"] == sha] == stages[1:]  # in order
    assert not [d for d in ds if d["kind"] == "rollback"]
    untouched_by_the_demo(ws)


@pytest.mark.parametrize(
    "name, gate, measured",
    [
        (setup_workspace.RANDOM, "ndcg_at_10", lambda m: m["ndcg_at_10_ci95_low"] < 0.72),
        (setup_workspace.SLOW, "latency_p95_ms", lambda m: m["latency_p95_ms"] >= 50.0),
    ],
)
def test_its_broken_twin_is_stopped_at_shadow(tmp_path, project_root, name, gate, measured):
    settings = Settings(project_root)
    ws, sha = submit(tmp_path / "ws", settings, name, "examples.bm25.broken:load")
    c = run(settings, ws.root, 3)
    cfg, stages = c.cfg, list(c.cfg.rollout.stages)
    for stage in stages[1:]:
        assert deployment.versions(ws.stage_dir(stage)) == []  # never deployed beyond shadow
    assert deployment.live(ws.stage_dir(stages[0])) is None  # and rolled back out of shadow
    ds = decisions.read(ws)
    rb = [d for d in ds if d["kind"] == "rollback"]
    assert len(rb) == 1 and rb[0]["stage"] == stages[0] and rb[0]["sha256"] == sha
    assert rb[0]["cause"] == "gate" and rb[0]["source"] == "controller"
    assert gate in rb[0]["reason"] and measured(rb[0]["measurements"]), rb[0]
    assert not any(d["kind"] == "promotion" for d in ds)
    twin = the(candidates(ws, cfg), name)
    assert twin["status"] == ModelStatus.REJECTED and gate in twin["rejected_reason"], twin
    untouched_by_the_demo(ws)
