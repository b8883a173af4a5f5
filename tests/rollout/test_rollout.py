"""The rollout controller: the stage plan in the config, gates that give pass/fail/inconclusive,
minimum evidence, critical gates, automatic rollback to the last good version, pauses, refusals
and the decision record. No model is trained here (artifacts are bytes; evidence is recorded)."""

import json

import pytest
import yaml
from rollout_helpers import call, make_ctx, pass_stage, promote_through, record

from cvagents.config import ConfigError, CoordinationConfig, Settings, load_coordination_config
from cvagents.rollout import controller as rollout
from cvagents.rollout import decisions, deployment, gates, metrics_store
from cvagents.rollout.state import snapshot
from cvagents.run.rebuild import catch_up


def _edit(path, fn):
    data = yaml.safe_load(path.read_text())
    fn(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


# ------------------------------------------------------------------------ the config


def test_stage_plan_loads_in_order_with_weights_evidence_and_gates(project_root):
    r = Settings(project_root).coordination.rollout
    assert list(r.stages) == ["shadow", "5_percent", "20_percent", "50_percent", "production"]
    assert r.stages["5_percent"].traffic == 0.05 and r.stages["5_percent"].min_requests > 0
    assert all(r.stages[s].min_observed_minutes > 0 for s in r.stages)
    assert r.gates["p0_incidents"].critical and not r.gates["ndcg_at_10"].critical
    assert r.gates["ndcg_at_10"].metric == "ndcg_at_10_ci95_low"  # promotion uses the CI's lower bound


def test_gate_on_a_metric_no_evaluator_produces_is_rejected_at_load(config_copy):
    p = config_copy / "configs" / "autonomous_coordination.yaml"
    _edit(p, lambda d: d["rollout"]["gates"]["ndcg_at_10"].__setitem__("metric", "accuracy"))
    with pytest.raises(ConfigError) as e:
        load_coordination_config(p)
    msg = str(e.value)
    assert (
        str(p) in msg
        and "rollout.gates.ndcg_at_10.metric" in msg
        and "'accuracy'" in msg
        and "evaluation.metrics" in msg
    )
    # declared as a custom evaluator's metric, the same gate loads
    _edit(p, lambda d: d["evaluation"].__setitem__("metrics", ["accuracy"]))
    assert load_coordination_config(p).rollout.gates["ndcg_at_10"].metric == "accuracy"


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda d: d["rollout"]["stages"]["shadow"]["gates"].append("speed"), "rollout.stages.shadow.gates"),
        (lambda d: d["rollout"].__setitem__("require_approval", ["prod"]), "rollout.require_approval"),
        (lambda d: d["rollout"]["stages"]["5_percent"].__setitem__("traffic", 1.5), "rollout.stages.5_percent.traffic"),
        (lambda d: d["rollout"]["gates"]["rollback_test"].__setitem__("op", ">="), "rollout.gates.rollback_test.op"),
        (lambda d: d["evaluation"].__setitem__("evaluator", "../outside.py"), "evaluation.evaluator"),
    ],
)
def test_bad_stage_plan_names_the_key(config_copy, edit, key):
    p = config_copy / "configs" / "autonomous_coordination.yaml"
    _edit(p, edit)
    with pytest.raises(ConfigError) as e:
        load_coordination_config(p)
    assert str(p) in str(e.value) and key in str(e.value)


# ------------------------------------------------------------------------- the gates


def _metrics(*recs):
    m = metrics_store.empty()
    for r in recs:
        metrics_store.merge_record(m, r)
    return m


def _eval(sha, low=0.80, stage="shadow", p95=3.0):
    return {
        "id": f"e{low}{p95}",
        "kind": "evaluation",
        "time": "1",
        "stage": stage,
        "model_sha256": sha,
        "ndcg_at_10": low + 0.05,
        "ndcg_at_10_ci95": [low, low + 0.1],
        "latency_p95_ms": p95,
        "champion": None,  # a first rollout: nothing to compare with
    }


def _traffic(sha, n, minutes, errors=0, p0=0, stage="shadow", i=0):
    return {
        "id": f"t{i}",
        "kind": "traffic",
        "time": f"2{i}",
        "stage": stage,
        "model_sha256": sha,
        "requests": n,
        "candidate_requests": n,
        "errors": errors,
        "within_slo": n - errors,
        "observed_minutes": minutes,
        "p0_incidents": p0,
    }


def _drill(sha, passed=True, stage="shadow"):
    return {"id": "d", "kind": "rollback_drill", "time": "3", "stage": stage, "model_sha256": sha, "passed": passed}


def _status(review):
    return {g.gate: g.status for g in review.gates}


def test_no_data_is_inconclusive_never_a_pass():
    cfg = CoordinationConfig()
    r = gates.review_stage(metrics_store.empty(), "shadow", "ab" * 32, cfg)
    assert r.verdict == "inconclusive" and set(_status(r).values()) == {"inconclusive"}
    assert "no evaluation" in r.reason and "no traffic replay" in r.reason and "no rollback drill" in r.reason
    # measurements of another version say nothing about this one
    m = _metrics(_eval("cd" * 32), _traffic("cd" * 32, 5000, 60), _drill("cd" * 32))
    assert gates.review_stage(m, "shadow", "ab" * 32, cfg).verdict == "inconclusive"


def test_too_little_traffic_is_inconclusive_even_when_the_values_pass():
    cfg = CoordinationConfig()
    sha = "ab" * 32
    m = _metrics(_eval(sha), _traffic(sha, 300, 3), _drill(sha))
    r = gates.review_stage(m, "shadow", sha, cfg)
    s = _status(r)
    assert s["ndcg_at_10"] == s["latency_p95_ms"] == s["rollback_test"] == "pass"
    assert s["slo_compliance"] == s["evidence"] == "inconclusive" and r.verdict == "inconclusive"
    assert "300/1000 requests, 3/10 min observed" in r.reason
    # evidence adds up across replays of the same version at the same stage
    m = _metrics(_eval(sha), _traffic(sha, 600, 6, i=1), _traffic(sha, 600, 6, i=2), _drill(sha))
    r = gates.review_stage(m, "shadow", sha, cfg)
    assert r.verdict == "pass" and r.evidence["candidate_requests"] == 1200 and r.evidence["observed_minutes"] == 12


def test_ndcg_gate_reads_the_lower_bound_of_the_confidence_interval():
    cfg = CoordinationConfig()
    sha = "ab" * 32
    m = _metrics(_eval(sha, low=0.70), _traffic(sha, 2000, 20), _drill(sha))  # point estimate 0.75 >= 0.72
    r = gates.review_stage(m, "shadow", sha, cfg)
    g = next(g for g in r.gates if g.gate == "ndcg_at_10")
    assert g.status == "fail" and g.value == 0.70 and r.verdict == "fail"


def test_critical_gate_fails_at_once_on_little_evidence():
    cfg = CoordinationConfig()
    sha = "ab" * 32
    m = _metrics(_traffic(sha, 20, 0.5, errors=20, p0=1))
    r = gates.review_stage(m, "shadow", sha, cfg)
    assert r.verdict == "fail"
    p0 = next(g for g in r.gates if g.gate == "p0_incidents")
    assert p0.status == "fail" and p0.critical and "fails at once" in p0.detail
    slo = next(g for g in r.gates if g.gate == "slo_compliance")
    assert slo.status == "inconclusive"  # a non-critical gate on 20 requests proves nothing either way


# ----------------------------------------------------------------- deploy refusals


def test_promotion_needs_a_passed_drill_of_that_very_version(tmp_path):
    cfg = CoordinationConfig.model_validate(
        {
            "rollout": {
                "stages": {
                    "shadow": {
                        "traffic": 0.0,
                        "min_requests": 10,
                        "min_observed_minutes": 1,
                        "gates": ["ndcg_at_10", "slo_compliance"],
                    },
                    "5_percent": {"traffic": 0.05, "gates": ["ndcg_at_10"]},
                    "production": {"traffic": 1.0},  # a plan ends at all traffic
                }
            }
        }
    )
    ctx = make_ctx(tmp_path / "ws", cfg)
    call(ctx, "deploy_model", "m#1", model_path="research/v1_production.pth", stage="shadow")
    record(ctx, "shadow")
    o = call(ctx, "deploy_model", "m#2", model_path="deployment/shadow", stage="5_percent")
    assert o.status == "refused" and "no passed rollback drill" in o.result["reason"]
    assert call(ctx, "run_rollback_drill", "m#3", stage="shadow").ok
    metrics_store.collect(ctx.workspace.metrics_file, ctx.workspace.evaluations_dir, "t")
    assert call(ctx, "deploy_model", "m#4", model_path="deployment/shadow", stage="5_percent").ok


@pytest.mark.parametrize(
    "path, why",
    [
        ("data/model.pth", "unknown artifact"),
        ("research/notes.txt", "neither a submitted candidate"),
    ],
)
def test_unknown_artifact_is_refused(tmp_path, path, why):
    ctx = make_ctx(tmp_path / "ws")
    f = ctx.workspace.root / path
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(b"who knows")
    o = call(ctx, "deploy_model", "m#1", model_path=path, stage="shadow")
    assert o.status == "refused" and why in o.result["reason"]
    assert deployment.live(ctx.workspace.stage_dir("shadow")) is None


def test_every_deployment_and_refusal_is_recorded_with_hashes(tmp_path):
    ctx = make_ctx(tmp_path / "ws")
    ws, cfg = ctx.workspace, ctx.config
    assert call(ctx, "deploy_model", "m#1", model_path="research/v1_production.pth", stage="shadow").ok
    o = call(ctx, "deploy_model", "m#2", model_path="deployment/shadow", stage="20_percent")
    assert o.status == "refused" and "skip 5_percent" in o.result["reason"]
    o = call(ctx, "deploy_model", "m#3", model_path="deployment/shadow", stage="5_percent")
    assert o.status == "refused" and "INCONCLUSIVE" in o.result["reason"]
    ds = decisions.read(ws)
    assert [d["kind"] for d in ds] == ["deployment", "refused", "refused"]
    live = deployment.live(ws.stage_dir("shadow"))
    for d in ds:
        assert d["config_hash"] == decisions.fingerprint(cfg) and d["sha256"] == live["sha256"]
        assert d["artifacts"]["stages"]["shadow"]["sha256"] == live["sha256"]
        assert d["thresholds"]["gates"]["ndcg_at_10"] == {
            "metric": "ndcg_at_10_ci95_low",
            "op": ">=",
            "threshold": 0.72,
            "critical": False,
        }
    inconclusive = ds[2]
    assert inconclusive["action_id"] == "m#3" and inconclusive["requested"] == "promotion"
    assert {g["gate"]: g["status"] for g in inconclusive["gates"]}["ndcg_at_10"] == "inconclusive"


# ------------------------------------------------------------------ the controller


def test_failed_gate_rolls_back_to_the_last_good_version(tmp_path):
    ctx = make_ctx(tmp_path / "ws")
    ws, cfg = ctx.workspace, ctx.config
    journaled = []
    ctx.record = lambda k, d: journaled.append((k, d))  # the run's recorder, as the tools get it
    promote_through(ctx, ["shadow", "5_percent"], "a")  # A is live in shadow and 5 %, all gates passed
    pass_stage(ctx, "5_percent", "a_5")
    a = deployment.live(ws.stage_dir("5_percent"))
    (ws.research_dir / "v1_production.pth").write_bytes(b"model-bytes-v2")  # candidate B
    promote_through(ctx, ["shadow", "5_percent"], "b")
    b = deployment.live(ws.stage_dir("5_percent"))
    assert b["sha256"] != a["sha256"] and b["previous_version"] == a["version"]
    rollout.after_heartbeat(ws, cfg, "2026-01-01T00:00:00", record=ctx.record)
    # a regression after the promotion: B's live metrics at 5 % drop below the gate
    record(ctx, "5_percent", ndcg_low=0.60, tag="drop")
    made = rollout.after_heartbeat(
        ws, cfg, "2026-01-01T00:05:00", record=lambda k, d: journaled.append((k, d)), settings_hash="h"
    )
    rb = [d for d in made if d["kind"] == "rollback"]
    assert {d["stage"] for d in rb} == {"5_percent", "shadow"}  # B is withdrawn everywhere it is live
    five = next(d for d in rb if d["stage"] == "5_percent")
    assert (
        five["cause"] == "gate"
        and "ndcg_at_10 0.6" in five["reason"]
        and five["rolled_back_to"]["sha256"] == a["sha256"]
    )
    assert (
        five["measurements"]["ndcg_at_10_ci95_low"] == 0.60
        and five["thresholds"]["gates"]["ndcg_at_10"]["threshold"] == 0.72
    )
    assert five["settings_hash"] == "h" and five["config_hash"] == decisions.fingerprint(cfg)
    assert deployment.live(ws.stage_dir("5_percent"))["sha256"] == a["sha256"]  # a pointer swap back to A
    assert deployment.live(ws.stage_dir("shadow"))["sha256"] == a["sha256"]
    assert deployment.verify(ws.stage_dir("5_percent"))[0]
    # journaled as rollout_decision, each decision once
    kinds = [k for k, _ in journaled]
    assert set(kinds) == {"rollout_decision"} and len({d["id"] for _, d in journaled}) == len(journaled) == len(
        decisions.read(ws)
    )
    # B is rejected: never deployed again, whoever asks
    o = call(ctx, "deploy_model", "b#again", model_path="research/v1_production.pth", stage="shadow")
    assert o.status == "refused" and "rejected" in o.result["reason"]
    log = next(ws.execution_dir.glob("deployments_*.log")).read_text()
    assert "rollback_model stage=5_percent action=rollout_controller ✅" in log


def test_inconclusive_pauses_with_the_reason_in_the_snapshot_recorded_once(tmp_path):
    ctx = make_ctx(tmp_path / "ws")
    ws, cfg = ctx.workspace, ctx.config
    call(ctx, "deploy_model", "m#1", model_path="research/v1_production.pth", stage="shadow")
    record(ctx, "shadow", requests=100, minutes=1)
    made = rollout.after_heartbeat(ws, cfg, "t1")
    assert [d["kind"] for d in made] == ["paused"] and "100/1000 requests" in made[0]["reason"]
    assert rollout.after_heartbeat(ws, cfg, "t2") == []  # nothing changed: nothing new recorded
    s = snapshot(ws, cfg)
    assert s["rollout"]["paused"] and "100/1000 requests, 1/10 min observed" in s["rollout"]["reason"]
    assert s["current"]["evidence"]["sufficient"] is False
    assert deployment.live(ws.stage_dir("shadow"))  # a pause never rolls back
    assert s["rollout"]["recent_decisions"][-1]["kind"] == "paused"


def test_a_crash_after_the_decision_but_before_controller_json_does_not_record_it_twice(tmp_path):
    ctx = make_ctx(tmp_path / "ws")
    ws, cfg = ctx.workspace, ctx.config
    call(ctx, "deploy_model", "m#1", model_path="research/v1_production.pth", stage="shadow")
    record(ctx, "shadow", requests=100, minutes=1)
    assert [d["kind"] for d in rollout.after_heartbeat(ws, cfg, "t1")] == ["paused"]
    rollout.controller_file(ws).unlink()  # as if killed between decisions.jsonl and controller.json
    assert rollout.after_heartbeat(ws, cfg, "t2") == []
    assert [d["kind"] for d in decisions.read(ws)].count("paused") == 1


def test_critical_incident_rolls_back_at_once(tmp_path):
    ctx = make_ctx(tmp_path / "ws")
    ws, cfg = ctx.workspace, ctx.config
    call(ctx, "deploy_model", "m#1", model_path="research/v1_production.pth", stage="shadow")
    record(ctx, "shadow", requests=5, minutes=0.1, p0=1, evaluation=False)
    made = rollout.after_heartbeat(ws, cfg, "t1")
    assert made[0]["kind"] == "rollback" and "p0_incidents" in made[0]["reason"] and "[critical]" in made[0]["reason"]
    assert deployment.live(ws.stage_dir("shadow")) is None  # first version: the stage is emptied


def test_corrupted_live_artifact_is_rolled_back_but_not_rejected(tmp_path):
    ctx = make_ctx(tmp_path / "ws")
    ws, cfg = ctx.workspace, ctx.config
    call(ctx, "deploy_model", "m#1", model_path="research/v1_production.pth", stage="shadow")
    (ws.research_dir / "v1_production.pth").write_bytes(b"model-bytes-v2")
    call(ctx, "deploy_model", "m#2", model_path="research/v1_production.pth", stage="shadow")
    first, second = deployment.versions(ws.stage_dir("shadow"))
    deployment.live_artifact(ws.stage_dir("shadow")).write_bytes(b"bit rot")
    made = rollout.after_heartbeat(ws, cfg, "t1")
    assert made[0]["cause"] == "health" and "checksum mismatch" in made[0]["reason"]
    assert deployment.live(ws.stage_dir("shadow"))["version"] == first["version"]
    assert second["sha256"] not in rollout.rejected_shas(ws, cfg, metrics_store.load(ws.metrics_file))


def test_hand_written_handoff_that_skips_a_stage_is_refused_and_reported(tmp_path, project_root):
    from cvagents.clock import ManualClock
    from cvagents.offline.provider import OfflineProvider
    from cvagents.planning.team import build_teams
    from cvagents.run.coordinator import Coordinator, RunOptions

    settings = Settings(project_root)
    ws_root = tmp_path / "ws"
    ctx = make_ctx(ws_root, settings.coordination)
    call(ctx, "deploy_model", "m#1", model_path="research/v1_production.pth", stage="shadow")
    handoff = {
        "timestamp": "2026-01-01T00:00:00",
        "meeting_id": "meeting_20260101_000000",
        "count": 2,
        "source": "written by hand",
        "actions": [
            {
                "id": 1,
                "action": "Promote the version live in shadow (deployment/shadow) to the 20_percent stage.",
                "owner": "ops_commander",
                "priority": "high",
                "estimated_duration": "5min",
                "success_criteria": "deployed",
            },
            {
                "id": 2,
                "action": "Promote the version live in shadow (deployment/shadow) to the 5_percent stage.",
                "owner": "ops_commander",
                "priority": "high",
                "estimated_duration": "5min",
                "success_criteria": "deployed",
            },
        ],
    }
    (ctx.workspace.handoff_file).write_text(json.dumps(handoff))
    c = Coordinator(
        settings,
        ws_root,
        RunOptions(console=False),
        build_teams(settings, lambda n, cfg: OfflineProvider()),
        clock=ManualClock(),
    )
    try:
        c.prepare()
        rec = c.heartbeat()
    finally:
        c.close()
    by_id = {a["id"]: a for a in rec["actions"]}
    assert by_id[1]["status"] == "refused" and "would skip 5_percent" in by_id[1]["reason"]
    assert by_id[2]["status"] == "refused" and "INCONCLUSIVE" in by_id[2]["reason"]
    report = json.loads(next(c.ws.execution_dir.glob("execution_*.json")).read_text())
    assert any(e["status"] == "refused" and "skip" in e["result"]["reason"] for e in report["executions"])
    assert (
        deployment.live(c.ws.stage_dir("5_percent")) is None and deployment.live(c.ws.stage_dir("20_percent")) is None
    )
    kinds = [d["kind"] for d in decisions.read(c.ws)]
    assert kinds.count("refused") == 2 and "paused" in kinds  # the controller reviewed after the heartbeat


def test_every_decision_is_journaled_first_and_its_line_rendered_from_the_journal(tmp_path):
    ctx = make_ctx(tmp_path / "ws")
    ws, cfg = ctx.workspace, ctx.config
    journal = []

    def record(kind, data):
        journal.append({"kind": kind, "data": json.loads(json.dumps(data))})
        return None

    ctx.record = record  # the run's recorder: tools journal their decisions through it
    call(ctx, "deploy_model", "m#1", model_path="research/v1_production.pth", stage="shadow")
    assert [j["data"]["kind"] for j in journal] == ["deployment"]  # journaled as it was made
    rollout.after_heartbeat(ws, cfg, "t1", record=record)
    call(ctx, "deploy_model", "m#2", model_path="deployment/shadow", stage="5_percent")  # refused
    assert [j["kind"] for j in journal] == ["rollout_decision"] * 3
    written = decisions.decisions_file(ws).read_bytes()
    assert [d["id"] for d in decisions.read(ws)] == [j["data"]["id"] for j in journal]
    decisions.decisions_file(ws).unlink()
    assert decisions.rebuild(ws, journal) == 3
    assert decisions.decisions_file(ws).read_bytes() == written  # byte for byte, from the journal alone
    again = []
    rollout.after_heartbeat(ws, cfg, "t2", record=lambda k, d: again.append(d))
    assert again == []  # nothing decided, nothing journaled, twice


def test_a_decision_journaled_but_not_written_is_caught_up(tmp_path):
    ctx = make_ctx(tmp_path / "ws")
    ws, cfg = ctx.workspace, ctx.config
    call(ctx, "deploy_model", "m#1", model_path="research/v1_production.pth", stage="shadow")
    journal = [{"kind": "rollout_decision", "data": d} for d in decisions.read(ws)]
    record(ctx, "shadow", requests=5, minutes=0.1, p0=1, evaluation=False)  # a critical failure
    made = rollout.after_heartbeat(
        ws, cfg, "2026-01-01T00:05:00", record=lambda k, d: journal.append({"kind": k, "data": d})
    )
    assert made[0]["kind"] == "rollback"
    log = ws.execution_dir / "deployments_20260101.log"
    assert "rollback_model stage=shadow action=rollout_controller ✅ version=None" in log.read_text()
    # as if killed after journaling the rollback, before its lines were written
    lines = decisions.decisions_file(ws).read_text().splitlines(keepends=True)
    decisions.decisions_file(ws).write_text("".join(lines[:-1]))
    log.unlink()

    class J:  # the journal's records() as the coordinator's resume reads it
        def records(self, kinds, since_seq, include_archived):
            return iter([type("R", (), j)() for j in journal[since_seq:] if j["kind"] in {kinds}])

    assert catch_up(ws, J(), 0) == 2
    assert decisions.decisions_file(ws).read_text() == "".join(lines)
    assert log.read_text().count("action=rollout_controller") == 1
    assert catch_up(ws, J(), 0) == 0  # idempotent
