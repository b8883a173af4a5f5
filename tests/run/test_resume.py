"""Resume: a session cut off at any step continues where its journal ends, and nothing the
journal shows done is done (or paid for) again. In-process and torch-free (a scripted plan on
the offline provider); the subprocess kill -9 tests are in test_crash.py."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime, timedelta

import pytest
from resume_helpers import START, calls_in_last_run, coordinator, records, report_files, run, seed

from cvagents.clock import Clock
from cvagents.config import Settings
from cvagents.durability.journal import Journal
from cvagents.durability.session import find_unfinished
from cvagents.execution.tools import ToolContext, default_registry
from cvagents.rollout import deployment
from cvagents.run import recovery as resume
from cvagents.workspace import Workspace


@pytest.fixture(autouse=True)
def fixed_durations(monkeypatch):
    """Durations are wall-clock measurements: pin them so runs compare byte for byte."""
    monkeypatch.setattr(time, "perf_counter", lambda: 0.0)


def _keys(recs):
    return Counter(
        (
            r.data.get("meeting_id") or r.data.get("action_id"),
            r.data["agent"],
            r.data["purpose"],
            r.data.get("step"),
            r.data["prompt_hash"],
        )
        for r in recs
        if r.kind == "agent_response"
    )


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    ws = seed(tmp_path_factory.mktemp("base") / "ws")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(time, "perf_counter", lambda: 0.0)
        result, _ = run(ws, 2)
    return ws, result, calls_in_last_run(), records(ws)


def _same_as_baseline(ws, baseline):
    base_ws, base_result, base_calls, base_recs = baseline
    recs = records(ws)
    assert max(_keys(recs).values()) == 1  # no response requested twice
    assert sum(_keys(recs).values()) == base_calls
    assert [r.data["meeting_id"] for r in recs if r.kind == "meeting_completed"] == [
        r.data["meeting_id"] for r in base_recs if r.kind == "meeting_completed"
    ]
    done = Counter(r.data["action_id"] for r in recs if r.kind == "action_finished")
    assert max(done.values()) == 1 and len(done) == sum(1 for r in base_recs if r.kind == "action_finished")
    theirs, ours = report_files(base_ws), report_files(ws)
    assert ours.keys() == theirs.keys()
    assert [k for k in ours if ours[k] != theirs[k]] == []
    return recs


@pytest.mark.parametrize("crash_at", [3, 6, 7, 8, 10, 20])
def test_a_run_cut_off_at_any_provider_call_continues_without_asking_twice(tmp_path, baseline, crash_at):
    """Calls 1-6 are meeting 1 (five contributions in parallel, the synthesis), 7-8 the deploy
    action (the deploy ran between them), 20 in the second meeting."""
    ws = seed(tmp_path / "ws")
    result, _ = run(ws, 2, crash_at=crash_at)
    assert result is None
    answered = sum(_keys(records(ws)).values())
    result, c = run(ws, 2)
    assert result["status"] == "finished" and result["meetings"] == 2 and result["session_id"] == "t"
    assert answered + calls_in_last_run() == baseline[2]  # every prompt paid for once, across both processes
    recs = _same_as_baseline(ws, baseline)
    resumed = [r.data for r in recs if r.kind == "session_resumed"]
    assert len(resumed) == 1 and resumed[0]["at_seq"] > 0
    assert len(deployment.versions(ws / "deployment" / "shadow")) == len(
        deployment.versions(baseline[0] / "deployment" / "shadow")
    )


def test_the_schedule_continues_from_the_journal(tmp_path, baseline):
    ws = seed(tmp_path / "ws")
    run(ws, 2, crash_at=14)  # in a heartbeat of the first meeting's phase
    cps = [r.data for r in records(ws) if r.kind == "checkpoint"]
    due = datetime.fromisoformat(cps[-1]["schedule"]["next_heartbeat"])
    run(ws, 2)
    recs = records(ws)
    hb = [r.data for r in recs if r.kind == "heartbeat_started"]
    after = [datetime.fromisoformat(h["time"]) for h in hb if h["heartbeat"] == cps[-1]["heartbeats"] + 1]
    assert after[0] == due  # the next heartbeat came when it was due, not "now"
    times = lambda rs, k: sorted({r.data["time"] for r in rs if r.kind == k})  # noqa: E731
    for kind in ("meeting_started", "heartbeat_started"):
        assert times(recs, kind) == times(baseline[3], kind)


def test_a_session_stopped_with_ctrl_c_is_continued(tmp_path, baseline):
    ws = seed(tmp_path / "ws")
    c = coordinator(ws, 2)
    c.on_step = lambda step, rec: c.clock.stop() if step == "meeting" else None
    assert c.run()["status"] == "stopped"
    c.close()
    assert json.loads((c.session_dir / "session.json").read_text())["status"] == "stopped"
    assert find_unfinished(ws / "sessions") == "t"
    result, _ = run(ws, 2, session_id=None)  # found by itself: the newest unfinished session
    assert result["session_id"] == "t" and result["status"] == "finished"
    _same_as_baseline(ws, baseline)
    assert find_unfinished(ws / "sessions") is None


def test_new_session_starts_afresh_and_leaves_the_unfinished_one(tmp_path):
    ws = seed(tmp_path / "ws")
    run(ws, 1, crash_at=8)
    fresh, _ = run(ws, 1, session_id=None, new_session=True)
    assert fresh["session_id"] != "t" and fresh["status"] == "finished" and fresh["meetings"] == 1
    assert find_unfinished(ws / "sessions") == "t"
    again, _ = run(ws, 1, session_id=None)
    assert again["session_id"] == "t" and again["status"] == "finished"


def test_a_torn_journal_tail_is_cut_and_the_run_continues(tmp_path, baseline):
    ws = seed(tmp_path / "ws")
    run(ws, 2, crash_at=9)
    seg = sorted((ws / "sessions" / "session_t" / "trajectories").glob("segment_*.jsonl"))[-1]
    with open(seg, "ab") as f:
        f.write(b'{"seq":999,"ts":"x","kind":"agent_response","data":{"agent":"ops_')  # half a record
    result, c = run(ws, 2)
    assert result["status"] == "finished"
    _same_as_baseline(ws, baseline)


def test_the_accelerated_clock_resumes_at_the_simulated_time_the_journal_ended(tmp_path):
    ws = seed(tmp_path / "ws")
    run(ws, 1, crash_at=9, clock=Clock(6000, START))  # 30 simulated minutes in 0.3 s
    last = max(
        datetime.fromisoformat(r.data["time"])
        for r in records(ws)
        if r.kind in ("heartbeat_started", "meeting_started")
    )
    c = coordinator(ws, 1, clock=Clock(6000))  # a new VM: its clock starts at "now"
    info = c.prepare()
    assert abs(c.clock.now() - last) < timedelta(minutes=5), (c.clock.now(), last)
    assert info["unfinished_step"].startswith("heartbeat #1")
    c.run()
    c.close()
    times = [datetime.fromisoformat(r.data["time"]) for r in records(ws) if r.kind == "heartbeat_started"]
    assert max(times) - min(times) < timedelta(hours=2)  # no jump to the wall clock's date


def test_resume_reads_the_tail_after_the_last_checkpoint_only(tmp_path):
    ws = seed(tmp_path / "ws")
    run(ws, 2, crash_at=25)  # in the second meeting's first heartbeat
    j = Journal.open(ws / "sessions" / "session_t" / "trajectories", read_only=True)
    tail = resume.scan(j)
    total = j.last_seq
    j.close()
    assert tail.checkpoint is not None and tail.checkpoint.seq > total * 0.7
    assert tail.records == total - tail.checkpoint.seq
    assert isinstance(tail.pending, resume.PendingHeartbeat) and tail.pending.inflight is not None


# ----------------------------------------------------------------------------- the world check


def tool(name):
    """A tool of the run's registry: its recovery hooks are what the recorder calls."""
    return default_registry().get(name)


@pytest.fixture
def ctx(tmp_path):
    s = Settings(__import__("pathlib").Path(__file__).resolve().parents[2])
    ws = Workspace.from_config(seed(tmp_path / "ws"), s.coordination).create(s.project_root)
    return ToolContext(ws, s.coordination, action_key="m#1", now=lambda: START)


def test_a_deployment_that_stopped_before_its_pointer_is_undone_and_redone(ctx):
    d = ctx.workspace.stage_dir("shadow")
    before = tool("deploy_model").world_before(ctx, {"stage": "shadow"})
    m = deployment.install(
        d, ctx.workspace.model_file, source_label="research/v1_production.pth", action_id="m#1", time="t"
    )
    (d / deployment.POINTER).unlink()  # as if killed between version.json and the pointer swap
    found = tool("deploy_model").repair_world(ctx, {"stage": "shadow"}, before)
    assert "pointer not switched" in found and "undone" in found
    assert deployment.by_action(d, "m#1") is None and not (d / "versions" / m["version"]).exists()


def test_a_finished_deployment_is_marked_done(ctx):
    from cvagents.execution.tools.deploy import DeployArgs, deploy_model

    d = ctx.workspace.stage_dir("shadow")
    before = tool("deploy_model").world_before(ctx, {"stage": "shadow"})
    first = deploy_model(ctx, DeployArgs(model_path="research/v1_production.pth", stage="shadow"))
    found = tool("deploy_model").repair_world(ctx, {"stage": "shadow"}, before)
    assert found.endswith("done") and deployment.live(d)["version"] == first["version"]
    from cvagents.execution.tools.registry import ToolOutcome

    again = ToolOutcome(
        "deploy_model",
        {},
        "succeeded",
        deploy_model(ctx, DeployArgs(model_path="research/v1_production.pth", stage="shadow")),
        0.0,
    )
    assert again.result.get("already_done")
    assert (
        tool("deploy_model").recovered_outcome(ctx, again, before).result == first
    )  # the same answer as the first call
    assert len(deployment.versions(d)) == 1


def test_a_drill_cut_short_has_its_pointer_put_back(ctx):
    d = ctx.workspace.stage_dir("shadow")
    m = deployment.install(d, ctx.workspace.model_file, source_label="x", action_id="m#0", time="t")
    # what a kill in the middle of a drill leaves: the original pointer saved, the live one swapped
    deployment.atomic_write_json(d / deployment.DRILL, deployment.read_pointer(d))
    deployment.point_to(d, None, action_id="m#1", time="t", reason="rollback drill")
    assert deployment.live(d) is None
    assert "restored" in tool("run_rollback_drill").repair_world(ctx, {"stage": "shadow"}, {})
    assert deployment.live(d)["version"] == m["version"]


def test_collect_metrics_rerun_reports_what_the_first_run_merged(ctx):
    from cvagents.execution.tools.registry import ToolOutcome
    from cvagents.rollout import metrics_store

    ws = ctx.workspace
    before = tool("collect_metrics").world_before(ctx, {})
    metrics_store.record_evaluation(
        ws.evaluations_dir, {"id": "drill_x", "kind": "rollback_drill", "stage": "shadow", "passed": True, "time": "t"}
    )
    metrics_store.collect(ws.metrics_file, ws.evaluations_dir, "t")  # the first run merged it, then died
    rerun = ToolOutcome("collect_metrics", {}, "succeeded", {"new_records": [], "history_length": 0}, 0.0)
    assert tool("collect_metrics").recovered_outcome(ctx, rerun, before).result["new_records"] == ["drill_x"]
