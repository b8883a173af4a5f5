"""The story `make demo` tells, on the offline team with the real demo models: V1 from nothing
deployed to production, then a degraded V2 submitted, deployed to shadow only, thrown back by
the controller with the gate's reason, and left alone by the next meeting — production still
V1, never touched. Two sessions on one workspace, as two `cvagents run` would be."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cvagents.clock import ManualClock
from cvagents.config import Settings
from cvagents.durability.hashing import sha256_file
from cvagents.models import registry
from cvagents.offline.provider import OfflineProvider, choose_tool
from cvagents.planning.team import build_teams
from cvagents.rollout import decisions, deployment, lifecycle
from cvagents.run.coordinator import Coordinator, RunOptions
from cvagents.workspace import Workspace

V1_MEETINGS = 5  # one meeting per stage: each stage gathers its evidence in one execution phase
V2_MEETINGS = 2  # V2 thrown back at shadow; the next meeting reports it and watches production


def run(project_root: Path, ws: Path, meetings: int) -> tuple[dict, Coordinator]:
    settings = Settings(project_root)
    teams = build_teams(settings, lambda name, cfg: OfflineProvider())
    c = Coordinator(settings, ws, RunOptions(meetings=meetings, console=False), teams, clock=ManualClock())
    try:
        return c.run(), c
    finally:
        c.close()


def submit_degraded(ws_root: Path, degraded_artifacts: Path) -> dict:
    """What `cvagents submit --demo degraded` does: the degraded demo model, trained on the same
    validation set, registered as candidate v2 (the fixture trained it once per session)."""
    src = next((degraded_artifacts / "research").glob("*degraded*.pth"))
    dst = ws_root / "research" / src.name
    shutil.copyfile(src, dst)
    ws = Workspace(ws_root)
    return registry.add(
        ws,
        name="v2",
        sha256=sha256_file(dst),
        path=ws.rel(dst),
        adapter=None,
        source={"kind": "demo", "variant": "degraded"},
        time=datetime.now(UTC).isoformat(timespec="seconds"),
        submitted_by="demo",
    )


@pytest.fixture(scope="module")
def story(trained_artifacts, degraded_artifacts, tmp_path_factory):
    project_root = Path(__file__).resolve().parent.parent
    root = tmp_path_factory.mktemp("demo") / "ws"
    for sub in ("research", "data"):
        shutil.copytree(trained_artifacts / sub, root / sub)
    first, c1 = run(project_root, root, V1_MEETINGS)
    ws, cfg = c1.ws, c1.cfg
    after_v1 = {
        "decisions": decisions.read(ws),
        "production": deployment.versions(ws.stage_dir("production")),
        "actions_files": sorted(ws.planning_dir.glob("actions_meeting_*.json")),
    }
    v2 = submit_degraded(root, degraded_artifacts)
    second, c2 = run(project_root, root, V2_MEETINGS)
    return {"ws": ws, "cfg": cfg, "first": first, "second": second, "c1": c1, "c2": c2, "after_v1": after_v1, "v2": v2}


def test_v1_reaches_production_one_stage_per_meeting(story):
    ws, cfg, first = story["ws"], story["cfg"], story["first"]
    assert first["status"] == "finished" and first["meetings"] == V1_MEETINGS
    v1_sha = sha256_file(ws.model_file)
    ds = story["after_v1"]["decisions"]
    promotions = [d["stage"] for d in ds if d["kind"] == "promotion"]
    assert promotions == list(cfg.rollout.stages)[1:]
    assert all(d["sha256"] == v1_sha for d in ds if d["kind"] == "promotion")
    assert not any(d["kind"] == "rollback" for d in ds)
    prod = story["after_v1"]["production"]
    assert [v["sha256"] for v in prod] == [v1_sha]
    passed = [d["stage"] for d in ds if d["kind"] == "gates_passed"]
    assert passed[-1] == "production"  # production's own evidence, gathered in the last meeting's phase


def test_v2_is_deployed_to_shadow_only_and_thrown_back_with_the_gate_s_reason(story):
    ws, cfg, v2 = story["ws"], story["cfg"], story["v2"]
    assert story["second"]["status"] == "finished" and story["second"]["meetings"] == V2_MEETINGS
    assert story["c2"].session_id != story["c1"].session_id  # a finished session: the next run is a new one
    new = decisions.read(ws)[len(story["after_v1"]["decisions"]) :]
    mine = [d for d in new if d.get("sha256") == v2["sha256"]]
    # the submission is journaled once, at the controller's first review in this run
    assert [d["name"] for d in mine if d["kind"] == "submitted"] == ["v2"]
    mine = [d for d in mine if d["kind"] != "submitted"]
    assert [(d["kind"], d["stage"]) for d in mine] == [("deployment", "shadow"), ("rollback", "shadow")]
    rb = mine[1]
    assert rb["source"] == "controller" and rb["cause"] == "gate" and "ndcg_at_10" in rb["reason"]
    for stage in list(cfg.rollout.stages)[1:]:
        assert v2["sha256"] not in {v["sha256"] for v in deployment.versions(ws.stage_dir(stage))}
    cands = {c["name"]: c for c in lifecycle.candidates(ws, cfg)}
    assert cands["v2"]["status"] == "rejected" and "ndcg_at_10" in cands["v2"]["rejected_reason"]
    assert cands["v1"]["status"] == "champion"


def test_production_is_still_v1_and_never_touched(story):
    ws = story["ws"]
    v1_sha = sha256_file(ws.model_file)
    assert deployment.live(ws.stage_dir("production"))["sha256"] == v1_sha
    assert deployment.versions(ws.stage_dir("production")) == story["after_v1"]["production"]
    new = decisions.read(ws)[len(story["after_v1"]["decisions"]) :]
    assert not any(d["stage"] == "production" and d["kind"] in ("promotion", "deployment", "rollback") for d in new)
    assert deployment.live(ws.stage_dir("shadow"))["sha256"] == v1_sha  # shadow back on the champion


def test_the_second_session_plans_v2_from_shadow_then_reports_it_and_leaves_it_alone(story):
    ws = story["ws"]
    earlier = set(story["after_v1"]["actions_files"])
    files = [p for p in sorted(ws.planning_dir.glob("actions_meeting_*.json")) if p not in earlier]
    assert len(files) == V2_MEETINGS
    meet1, meet2 = (json.loads(p.read_text()) for p in files)
    first = meet1["actions"][0]
    assert "candidate v2" in first["action"]
    assert choose_tool(first["action"]) == ("deploy_model", {"model_path": story["v2"]["path"], "stage": "shadow"})
    assert "champion v1" in json.dumps(meet1)
    assert "v2" in meet2["decisions"][0]["decision"] and "ndcg_at_10" in meet2["decisions"][0]["rationale"]
    assert any("v2" in r and "ndcg_at_10" in r for r in meet2["risks"])
    assert meet2["go_no_go"]["decision"] == "no-go"
    t = [choose_tool(a["action"]) for a in meet2["actions"]]
    assert t and not any(x and x[0] in ("deploy_model", "run_python_script") for x in t)
    done = [
        a
        for p in sorted(ws.execution_dir.glob("execution_*.json"))
        for a in json.loads(p.read_text())["actions"]
        if a["action_id"].startswith(meet2["meeting_id"])
    ]
    assert done and all(a["status"] == "succeeded" for a in done)
    assert not any(a["tool"] == "deploy_model" for a in done)
