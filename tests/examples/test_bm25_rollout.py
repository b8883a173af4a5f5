"""End to end, on the offline team: the BM25 example — a model none of us wrote, loaded only
through its adapter — submitted as a candidate and rolled from shadow to production; its broken
twins (random ranking; 60 ms per query) submitted the same way and stopped at shadow by the gates.

The coordinator runs in-process on a ManualClock, with the repo's configs, as in
tests/rollout/test_degraded.py. The slow twin's evaluation really sleeps 60 ms per query; the
controller rolls it back after the heartbeat that measured it, before its traffic replay starts.

Then V1 → V2: with the BM25 model as champion in production, a second BM25 candidate is judged
against it (paired NDCG difference, latency P95 ratio, replayed traffic split between the two) and
either replaces it — the old champion staying the rollback target — or is thrown back at shadow.
"""

import json
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
from cvagents.rollout.lifecycle import ModelStatus, candidates, champion_for  # noqa: E402
from cvagents.rollout.submission import submit_candidate  # noqa: E402
from cvagents.run.coordinator import Coordinator, RunOptions  # noqa: E402
from cvagents.workspace import Workspace  # noqa: E402
from examples.bm25 import broken, make_validation_set, setup_workspace  # noqa: E402
from examples.bm25.model import Params  # noqa: E402

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


# --------------------------------------------------------------------------- V1 → V2


@pytest.fixture
def bm25_champion(tmp_path, project_root):
    """The good BM25 model rolled out to production: the champion a V2 is judged against."""
    settings = Settings(project_root)
    ws, sha = submit(tmp_path / "ws", settings, setup_workspace.GOOD, "examples.bm25.adapter:load")
    run(settings, ws.root, MEETINGS_TO_PRODUCTION)
    assert the(candidates(ws, ws.config), setup_workspace.GOOD)["status"] == ModelStatus.CHAMPION
    return settings, ws, sha


def submit_v2(ws: Workspace, settings: Settings, model: dict, adapter: str) -> str:
    path = ws.research_dir / "bm25_v2.json"
    path.write_text(json.dumps(model), encoding="utf-8")
    entry = submit_candidate(ws, settings.coordination, str(path), name="v2", adapter=adapter, by="test")
    return entry["sha256"]


def v2_evaluations(ws: Workspace, sha: str) -> list[dict]:
    recs = [json.loads(p.read_text()) for p in ws.evaluations_dir.glob("eval_*.json")]
    return [r for r in recs if r["model_sha256"] == sha]


def test_a_better_v2_replaces_the_champion_which_stays_the_rollback_target(bm25_champion):
    settings, ws, v1 = bm25_champion
    v1_version = deployment.live(ws.stage_dir("production"))["version"]
    v2 = submit_v2(ws, settings, Params(k1=0.5).to_json(), "examples.bm25.adapter:load")
    c = run(settings, ws.root, MEETINGS_TO_PRODUCTION)
    stages = list(c.cfg.rollout.stages)
    cands = candidates(ws, c.cfg)
    assert the(cands, "v2")["status"] == ModelStatus.CHAMPION
    assert the(cands, setup_workspace.GOOD)["status"] == ModelStatus.RETIRED
    prod = deployment.live(ws.stage_dir("production"))
    assert prod["sha256"] == v2 and prod["previous_version"] == v1_version  # V1 is the rollback target
    assert champion_for(ws, c.cfg, v2)["sha256"] == v1
    ds = decisions.read(ws)
    assert [d["stage"] for d in ds if d["kind"] == "promotion" and d["sha256"] == v2] == stages[1:]
    # judged against V1 at every stage: the comparison gates were measured, not waved through
    evals = v2_evaluations(ws, v2)
    assert evals and all(e["champion"]["sha256"] == v1 for e in evals)
    assert all(e["ndcg_delta_ci95_low"] >= -0.01 and e["latency_p95_ratio"] <= 1.2 for e in evals)
    # the traffic of each split stage went to V2 and to the champion V1
    split = [json.loads(p.read_text()) for p in ws.evaluations_dir.glob("traffic_*.json")]
    split = [r for r in split if r["model_sha256"] == v2 and r["mode"] == "split" and r["stage"] != "production"]
    assert split and all(r["production"]["sha256"] == v1 and r["production_requests"] > 0 for r in split)


def test_a_v2_slower_than_the_champion_is_thrown_back_at_shadow(bm25_champion):
    """5 ms per query is inside the 50 ms SLO, but several times the champion's P95: the
    latency_vs_champion gate alone throws it back."""
    settings, ws, v1 = bm25_champion
    v2 = submit_v2(ws, settings, broken.artifact("slow", delay_ms=5), "examples.bm25.broken:load")
    c = run(settings, ws.root, 3)
    stages = list(c.cfg.rollout.stages)
    for stage in stages[1:]:
        assert v2 not in {v["sha256"] for v in deployment.versions(ws.stage_dir(stage))}
    assert deployment.live(ws.stage_dir("production"))["sha256"] == v1  # the champion was never touched
    assert deployment.live(ws.stage_dir(stages[0]))["sha256"] == v1  # shadow rolled back to its last good version
    (rb,) = [d for d in decisions.read(ws) if d["kind"] == "rollback" and d["sha256"] == v2]
    assert rb["stage"] == stages[0] and rb["cause"] == "gate"
    assert "latency_vs_champion" in rb["reason"] and "ndcg" not in rb["reason"], rb["reason"]
    assert rb["measurements"]["latency_p95_ms"] < 50 and rb["measurements"]["latency_p95_ratio"] > 1.2
    v2c = the(candidates(ws, c.cfg), "v2")
    assert v2c["status"] == ModelStatus.REJECTED and "latency_vs_champion" in v2c["rejected_reason"]
    assert the(candidates(ws, c.cfg), setup_workspace.GOOD)["status"] == ModelStatus.CHAMPION
