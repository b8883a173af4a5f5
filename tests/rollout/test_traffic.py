"""Traffic replay: the router's share, shadow mirroring with top-10 overlap, per-request latency
and errors, SLO compliance, P0 incidents; and the replay_traffic tool on the real model, whose
evidence adds up per stage and version."""

import json
import time

import pytest
from rollout_helpers import call, make_ctx

from cvagents.config import CoordinationConfig
from cvagents.rollout import deployment, gates, metrics_store, traffic

TEXTS = [f"query {i}" for i in range(50)]


class Fixed:
    """An adapter that answers the same ``items`` for every query, optionally slow or failing."""

    def __init__(self, items, delay_s=0.0, fail_every=0, answer=None):
        self.items, self.delay_s, self.fail_every, self.calls = [str(i) for i in items], delay_s, fail_every, 0
        self.answer = answer

    def query(self, texts, k):
        self.calls += 1
        if self.fail_every and self.calls % self.fail_every == 0:
            raise RuntimeError("boom")
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.answer is not None:
            return self.answer
        return [self.items[:k] for _ in texts]


def _replay(cand, prod, weight, n=400, **kw):
    args = dict(weight=weight, requests=n, slo_ms=50.0, p0_error_rate=0.01, warmup=0)
    args.update(kw)
    return traffic.replay(cand, prod, TEXTS, **args)


@pytest.mark.parametrize("w", [0.05, 0.2, 0.5, 0.37])
def test_router_sends_the_configured_share_spread_evenly(w):
    r = traffic.route(1000, w, seed=3)
    assert sum(r) in (int(1000 * w), int(1000 * w) + 1)
    gaps = [j - i for i, j in zip([k for k, x in enumerate(r) if x], [k for k, x in enumerate(r) if x][1:])]
    assert max(gaps) <= int(1 / w) + 1  # no long stretch without the candidate
    assert r == traffic.route(1000, w, seed=3)  # deterministic: the same replay routes the same way
    assert traffic.route(10, 0.0) == [False] * 10 and traffic.route(10, 1.0) == [True] * 10


def test_split_traffic_serves_the_share_and_the_rest_by_production():
    cand, prod = Fixed(range(10)), Fixed(range(10, 20))
    res = _replay(cand, prod, 0.2, n=500)
    assert res["mode"] == "split" and res["candidate_requests"] == 100 and res["production_requests"] == 400
    assert cand.calls == 100 and prod.calls == 400
    log = res["per_request"]
    assert log["route"].count("c") == 100 and log["route"].count("p") == 400
    assert sum(x is not None for x in log["candidate_latency_ms"]) == 100
    assert res["slo_compliance"] == 1.0 and res["p0_incidents"] == 0 and res["top10_overlap"] is None


def test_shadow_mirrors_every_request_compares_and_never_serves():
    cand, prod = Fixed([*range(5), *range(100, 105)]), Fixed(range(10))
    res = _replay(cand, prod, 0.0, n=200)
    assert res["mode"] == "shadow" and set(res["per_request"]["route"]) == {"m"}
    assert (
        res["production_requests"] == 200 and res["candidate_requests"] == 200
    )  # production served, candidate mirrored
    assert res["top10_overlap"] == 0.5 and res["overlap_n"] == 200
    same = _replay(Fixed(range(10)), Fixed(range(10)), 0.0, n=50)
    assert same["top10_overlap"] == 1.0
    alone = _replay(Fixed(range(10)), None, 0.0, n=50)
    assert alone["top10_overlap"] is None and alone["candidate_requests"] == 50


def test_errors_are_recorded_per_request_and_an_error_rate_above_the_bound_is_a_p0():
    res = _replay(Fixed(range(10), fail_every=10), None, 1.0, n=200)
    assert res["errors"] == 20 and res["error_rate"] == 0.1 and res["slo_compliance"] == 0.9
    assert res["p0_incidents"] == 1 and "error rate 0.1000 above the bound 0.01" in res["incidents"][0]
    errs = res["per_request"]["candidate_errors"]
    assert len(errs) == 20 and errs[0][1] == "RuntimeError: boom"
    short = _replay(Fixed(range(3)), None, 1.0, n=20)  # fewer than k ids is still an answer
    assert short["errors"] == 0 and short["slo_compliance"] == 1.0


@pytest.mark.parametrize(
    "answer, why",
    [
        ([[]], "no document ids"),
        ([], "expected a list of 1 ranked lists"),
        ([[3, 4]], "list of string ids"),
        ([("7", 0.9)], "list of string ids"),
        ("7", "expected a list of 1 ranked lists, got str"),
    ],
)
def test_an_answer_that_is_not_a_list_of_ids_is_an_error(answer, why):
    res = _replay(Fixed(range(10), answer=answer), None, 1.0, n=20)
    assert res["errors"] == 20 and res["p0_incidents"] == 1
    assert (
        res["per_request"]["candidate_errors"][0][1].startswith("invalid response")
        and why in res["per_request"]["candidate_errors"][0][1]
    )


def test_slow_answers_break_the_slo_without_being_errors():
    res = _replay(Fixed(range(10), delay_s=0.004), None, 1.0, n=20, slo_ms=2.0)
    assert res["errors"] == 0 and res["slo_compliance"] == 0.0 and res["p0_incidents"] == 0
    assert res["serve_latency_p95_ms"] >= 4.0


def test_a_candidate_that_cannot_load_is_a_crash_and_a_p0():
    res = _replay(None, Fixed(range(10)), 0.05, n=400, candidate_error="CheckpointError: bad file")
    assert res["crashed"] and res["error_rate"] == 1.0 and res["p0_incidents"] == 2
    assert any("crashed (CheckpointError: bad file)" in i for i in res["incidents"])


def test_no_production_version_leaves_the_rest_unserved():
    res = _replay(Fixed(range(10)), None, 0.05, n=400)
    assert res["candidate_requests"] == 20 and res["unserved_requests"] == 380 and res["production_requests"] == 0


# ---------------------------------------------------------------- the tool, real model


@pytest.fixture
def ctx(seeded_workspace):
    c = make_ctx(seeded_workspace, model_bytes=None)
    assert call(c, "deploy_model", "m#deploy", model_path="research/v1_production.pth", stage="shadow").ok
    return c


def test_replay_tool_records_evidence_that_adds_up_across_replays(ctx):
    ws, cfg = ctx.workspace, ctx.config
    o = call(ctx, "replay_traffic", "m#r1", stage="shadow", minutes=5)
    assert o.status == "succeeded", o.result
    r = o.result
    assert r["requests"] == 600 and r["candidate_requests"] == 600 and r["observed_minutes"] == 5
    assert r["mode"] == "shadow" and r["comparison"] == "no production version to compare with"
    assert r["slo_compliance"] == 1.0 and r["p0_incidents"] == 0 and 0 < r["serve_latency_p95_ms"] < 50
    log = json.loads((ws.root / r["requests_file"]).read_text())
    assert len(log["candidate_latency_ms"]) == 600 and log["route"] == "m" * 600
    assert call(ctx, "replay_traffic", "m#r1", stage="shadow", minutes=5).result["already_done"]  # idempotent
    m = metrics_store.collect(ws.metrics_file, ws.evaluations_dir, "t")["metrics"]
    live = deployment.live(ws.stage_dir("shadow"))
    rev = gates.review_stage(m, "shadow", live["sha256"], cfg)
    assert rev.evidence["candidate_requests"] == 600 and not rev.evidence["sufficient"]
    assert {g.gate: g.status for g in rev.gates}["slo_compliance"] == "inconclusive"
    assert call(ctx, "replay_traffic", "m#r2", stage="shadow", minutes=5).ok
    m = metrics_store.collect(ws.metrics_file, ws.evaluations_dir, "t")["metrics"]
    rev = gates.review_stage(m, "shadow", live["sha256"], cfg)
    assert (
        rev.evidence["candidate_requests"] == 1200
        and rev.evidence["observed_minutes"] == 10
        and rev.evidence["sufficient"]
    )
    assert {g.gate: g.status for g in rev.gates}["slo_compliance"] == "pass"
    h = m["history"]  # per stage and version: the evidence as it stood after each replay
    assert [x["kind"] for x in h] == ["traffic", "traffic"] and [x["candidate_requests"] for x in h] == [600, 1200]
    assert h[-1]["stage"] == "shadow" and h[-1]["version"] == live["version"] and h[-1]["ndcg_at_10"] is None
    assert m["stages"]["shadow"]["slo_compliance"] == 1.0 and m["stages"]["shadow"]["candidate_requests"] == 1200


def test_only_the_newest_request_logs_are_kept_and_the_evidence_still_adds_up(ctx):
    ws = ctx.workspace
    r = ctx.config.rollout
    ctx.config = ctx.config.model_copy(
        update={"rollout": r.model_copy(update={"replay": r.replay.model_copy(update={"keep_request_logs": 2})})}
    )
    files = [
        call(ctx, "replay_traffic", f"m#k{i}", stage="shadow", minutes=1).result["requests_file"] for i in range(3)
    ]
    assert sorted(p.name for p in (ws.metrics_file.parent / "traffic").iterdir()) == sorted(
        f.rsplit("/", 1)[1] for f in files[1:]
    )
    m = metrics_store.collect(ws.metrics_file, ws.evaluations_dir, "t")["metrics"]
    assert m["stages"]["shadow"]["candidate_requests"] == 3 * 120  # the summaries are all kept


def test_shadow_replay_compares_with_production(ctx, degraded_artifacts):
    ws = ctx.workspace
    # an older model already in production (installed directly: this test is about the replay)
    deployment.install(
        ws.stage_dir("production"), ws.research_dir / "v1_production.pth", source_label="x", action_id="setup", time="t"
    )
    same = call(ctx, "replay_traffic", "m#same", stage="shadow", minutes=1).result
    assert same["comparison"] == "top-10 overlap with production" and same["top10_overlap"] == 1.0
    assert same["production"]["stage"] == "production" and same["production_requests"] == 120
    # a different candidate in shadow answers differently
    bad = ws.research_dir / "v1_degraded.pth"
    bad.write_bytes((degraded_artifacts / "research" / "v1_degraded.pth").read_bytes())
    assert call(ctx, "deploy_model", "m#deploy_bad", model_path="research/v1_degraded.pth", stage="shadow").ok
    diff = call(ctx, "replay_traffic", "m#diff", stage="shadow", minutes=1).result
    assert diff["top10_overlap"] < 0.9 and diff["model_sha256"] != same["model_sha256"]


def test_split_replay_at_five_percent(seeded_workspace):
    cfg = CoordinationConfig()
    c = make_ctx(seeded_workspace, cfg, model_bytes=None)
    ws = c.workspace
    deployment.install(
        ws.stage_dir("5_percent"), ws.research_dir / "v1_production.pth", source_label="x", action_id="setup", time="t"
    )
    r = call(c, "replay_traffic", "m#5", stage="5_percent", minutes=10).result
    assert (
        r["mode"] == "split"
        and r["requests"] == 1200
        and r["candidate_requests"] == 60
        and r["unserved_requests"] == 1140
    )


def test_replay_sends_back_too_long_and_fails_unhealthy(ctx):
    o = call(ctx, "replay_traffic", "m#long", stage="shadow", minutes=10_000)
    assert o.status == "failed" and "at most 240" in o.result["error"]  # an argument the agent can fix, not a refusal
    deployment.live_artifact(ctx.workspace.stage_dir("shadow")).write_bytes(b"bit rot")
    o = call(ctx, "replay_traffic", "m#rot", stage="shadow", minutes=1)
    assert o.status == "failed" and "unhealthy" in o.result["error"]
    o = call(ctx, "replay_traffic", "m#empty", stage="5_percent")
    assert o.status == "failed" and "nothing is deployed" in o.result["error"]
