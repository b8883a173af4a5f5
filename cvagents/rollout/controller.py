"""Stages and gates: the rollout controller's side, which no agent can talk its way past.

Agents propose; the controller decides.

- Each gate of a stage gives ``pass``, ``fail`` or ``inconclusive``. Missing data is
  inconclusive, never a pass; so is a traffic measurement made on less evidence than the stage
  asks for (``min_requests``, ``min_observed_minutes``) — except that a critical gate (P0
  incidents) fails the stage at once.
- A model enters a stage only from the stage before it, only when every gate of that stage
  passed for the very artifact (same sha256), after a passed rollback drill of it there, and —
  for stages under ``require_approval`` — after a human approved that artifact.
  (``assess_deploy``; the deploy tool refuses anything else and records why.)
- After every executive heartbeat the controller reviews every deployed stage
  (``after_heartbeat``): a failed gate, or an artifact whose checksum no longer matches, rolls
  the stage back to its last good version (a pointer swap); inconclusive pauses the stage, with
  the reason in the state snapshot. Every decision is recorded (``cvagents.rollout.decisions``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cvagents.config import CoordinationConfig
from cvagents.durability.atomic import atomic_write_json, read_json
from cvagents.durability.hashing import sha256_file
from cvagents.metric_sources import DRILL, EVALUATION, TRAFFIC, source_of
from cvagents.rollout import approval, decisions, deployment, metrics_store
from cvagents.workspace import Workspace

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
ARTIFACT_SUFFIXES = (".pth", ".pt")

log = logging.getLogger("cvagents.rollout.controller")


@dataclass(frozen=True)
class GateResult:
    gate: str
    status: str
    value: Any
    threshold: str
    detail: str = ""
    metric: str = ""
    source: str = ""
    critical: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Compact: ``detail`` only when there is one, ``critical`` only when true."""
        d = asdict(self)
        if not d["detail"]:
            del d["detail"]
        if not d["critical"]:
            del d["critical"]
        return d


@dataclass
class StageReview:
    """One stage's gates for one version, and what they add up to."""

    stage: str
    sha256: str | None
    version: str | None
    verdict: str
    gates: list[GateResult]
    evidence: dict[str, Any]
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "gates"}, "gates": [g.as_dict() for g in self.gates]}


# ------------------------------------------------------------------------------ the gates


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _compare(op: str, value: Any, threshold: Any) -> bool:
    if isinstance(threshold, bool) or isinstance(value, bool):
        return bool(value) == bool(threshold) if op == "==" else False
    try:
        v, t = float(value), float(threshold)
    except (TypeError, ValueError):
        return False
    return {">=": v >= t, ">": v > t, "<=": v <= t, "<": v < t, "==": v == t}[op]


def metric_value(ev: dict[str, Any] | None, metric: str) -> Any:
    """A metric of one version at one stage, from the source that produces it."""
    if not ev:
        return None
    src = source_of(metric)
    if src == DRILL:
        d = ev.get("drill")
        return d.get("passed") if d and metric == "rollback_test_passed" else None
    rec = ev.get("traffic" if src == TRAFFIC else "evaluation") or {}
    if rec.get(metric) is not None:
        return rec[metric]
    ci = rec.get("ndcg_at_10_ci95")
    if ci and metric in ("ndcg_at_10_ci95_low", "ndcg_at_10_ci95_high"):
        return ci[0] if metric.endswith("low") else ci[1]
    return None


def evidence_status(cfg: CoordinationConfig, stage: str, ev: dict[str, Any] | None) -> dict[str, Any]:
    """How much traffic the version has been observed under at the stage, against the plan."""
    plan = cfg.rollout.stages[stage]
    t = (ev or {}).get("traffic") or {}
    n, minutes = int(t.get("candidate_requests") or 0), float(t.get("observed_minutes") or 0.0)
    return {
        "candidate_requests": n,
        "min_requests": plan.min_requests,
        "observed_minutes": round(minutes, 3),
        "min_observed_minutes": plan.min_observed_minutes,
        "replays": int(t.get("replays") or 0),
        "traffic_weight": plan.traffic,
        "sufficient": n >= plan.min_requests and minutes >= plan.min_observed_minutes,
    }


def _evidence_text(e: dict[str, Any]) -> str:
    return f"{e['candidate_requests']}/{e['min_requests']} requests, {e['observed_minutes']:g}/{e['min_observed_minutes']:g} min observed"


def review_stage(
    metrics: dict[str, Any], stage: str, sha: str | None, cfg: CoordinationConfig, version: str | None = None
) -> StageReview:
    """Every gate of ``stage`` for the version with sha256 ``sha``."""
    plan = cfg.rollout.stages[stage]
    ev = metrics_store.evidence(metrics, stage, sha)
    evs = evidence_status(cfg, stage, ev)
    results: list[GateResult] = []
    for name in plan.gates:
        g = cfg.rollout.gates[name]
        src = source_of(g.metric)
        thr = f"{g.op} {_fmt(g.threshold)}"
        v = metric_value(ev, g.metric)
        if v is None:
            what = {DRILL: "no rollback drill", TRAFFIC: "no traffic replay", EVALUATION: "no evaluation"}[src]
            results.append(
                GateResult(
                    name, INCONCLUSIVE, None, thr, f"{what} of this version at {stage}", g.metric, src, g.critical
                )
            )
            continue
        ok = _compare(g.op, v, g.threshold)
        if src == TRAFFIC and not evs["sufficient"]:
            if not ok and g.critical:
                results.append(
                    GateResult(
                        name,
                        FAIL,
                        v,
                        thr,
                        f"critical: {g.metric} {_fmt(v)} fails at once ({_evidence_text(evs)})",
                        g.metric,
                        src,
                        True,
                    )
                )
            else:
                results.append(
                    GateResult(
                        name,
                        INCONCLUSIVE,
                        v,
                        thr,
                        f"too little evidence: {_evidence_text(evs)}",
                        g.metric,
                        src,
                        g.critical,
                    )
                )
            continue
        detail = "" if ok else f"{g.metric} {_fmt(v)} does not satisfy {thr}"
        if g.metric == "ndcg_at_10_ci95_low":
            ci = ((ev or {}).get("evaluation") or {}).get("ndcg_at_10_ci95")
            detail = f"lower bound of the 95% CI {ci}" + (f"; {detail}" if detail else "")
        results.append(GateResult(name, PASS if ok else FAIL, v, thr, detail, g.metric, src, g.critical))
    if plan.min_requests or plan.min_observed_minutes:
        results.append(
            GateResult(
                "evidence",
                PASS if evs["sufficient"] else INCONCLUSIVE,
                f"{evs['candidate_requests']} requests / {evs['observed_minutes']:g} min",
                f">= {plan.min_requests} requests, >= {plan.min_observed_minutes:g} min",
                "" if evs["sufficient"] else f"too little evidence: {_evidence_text(evs)}",
                "",
                TRAFFIC,
            )
        )
    v = verdict(results)
    return StageReview(stage, sha, version or (ev or {}).get("version"), v, results, evs, _reason(v, results))


def _reason(v: str, results: list[GateResult]) -> str:
    if v == PASS:
        return "every gate passed"
    bad = [r for r in results if r.status == v]
    if v == FAIL:
        return "failed: " + "; ".join(
            f"{r.gate} {_fmt(r.value)} (needs {r.threshold}){' [critical]' if r.critical else ''}" for r in bad
        )
    return "inconclusive: " + "; ".join(f"{r.gate} ({r.detail})" for r in bad)


def evaluate_gates(
    metrics: dict[str, Any], stage: str, live_sha: str | None, cfg: CoordinationConfig
) -> list[GateResult]:
    """The gates of ``stage`` for the artifact ``live_sha``."""
    return review_stage(metrics, stage, live_sha, cfg).gates


def verdict(results: list[GateResult]) -> str:
    """``fail`` if any gate failed (a critical one at once), else ``inconclusive`` if any is,
    else ``pass``."""
    statuses = {r.status for r in results}
    if FAIL in statuses:
        return FAIL
    if INCONCLUSIVE in statuses or not results:
        return INCONCLUSIVE
    return PASS


def next_stage(cfg: CoordinationConfig, stage: str | None) -> str | None:
    stages = list(cfg.rollout.stages)
    if stage is None:
        return stages[0]
    i = stages.index(stage)
    return stages[i + 1] if i + 1 < len(stages) else None


def previous_stage(cfg: CoordinationConfig, stage: str) -> str | None:
    stages = list(cfg.rollout.stages)
    i = stages.index(stage)
    return stages[i - 1] if i > 0 else None


def thresholds_summary(cfg: CoordinationConfig) -> dict[str, Any]:
    """The guide's five thresholds, by the metric each default gate reads (for agents and
    dashboards); None where no gate reads that metric."""
    by_metric = {g.metric: g for g in cfg.rollout.gates.values()}
    used = {n for p in cfg.rollout.stages.values() for n in p.gates}

    def t(*metrics):
        for m in metrics:
            if m in by_metric:
                return by_metric[m].threshold
        return None

    return {
        "ndcg_at_10_min": t("ndcg_at_10_ci95_low", "ndcg_at_10"),
        "latency_p95_ms_max": t("latency_p95_ms", "serve_latency_p95_ms"),
        "slo_compliance_min": t("slo_compliance"),
        "p0_incidents_max": t("p0_incidents"),
        "rollback_test_required": any(cfg.rollout.gates[n].metric == "rollback_test_passed" for n in used)
        or cfg.rollout.drill_before_promotion,
        "slo_latency_objective_ms": cfg.rollout.slo.latency_objective_ms,
    }


# ------------------------------------------------------------------ rejected versions


def rejected_shas(ws: Workspace, cfg: CoordinationConfig, metrics: dict[str, Any]) -> dict[str, str]:
    """Artifacts that failed a gate at some stage (from the evidence, and from the controller's
    rollbacks), with why: never deployed again."""
    out: dict[str, str] = {}
    for stage, by_sha in (metrics.get("evidence") or {}).items():
        if stage not in cfg.rollout.stages:
            continue
        for sha in by_sha:
            r = review_stage(metrics, stage, sha, cfg)
            if r.verdict == FAIL:
                out.setdefault(sha, f"{r.reason} at {stage}")
    for d in decisions.read(ws):
        if d.get("kind") == "rollback" and d.get("cause") == "gate" and d.get("sha256"):
            out.setdefault(d["sha256"], f"{d.get('reason')} at {d.get('stage')}")
    return out


# ---------------------------------------------------------------- deployment decisions


@dataclass
class DeployAssessment:
    allowed: bool
    reason: str
    review: StageReview | None = None  # the previous stage's gates, for a promotion
    previous_stage: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def artifact_known(ws: Workspace, cfg: CoordinationConfig, path: Path) -> str | None:
    """Why ``path`` is not an artifact the first stage may take, or None."""
    p = Path(path).resolve()
    if p.suffix not in ARTIFACT_SUFFIXES:
        return f"{ws.rel(p)} is not a model artifact ({', '.join(ARTIFACT_SUFFIXES)})"
    folders = [(ws.root / f).resolve() for f in cfg.rollout.artifact_folders] + [ws.deployment_dir.resolve()]
    if not any(f in p.parents for f in folders):
        return f"{ws.rel(p)} is not under the artifact folders ({', '.join(cfg.rollout.artifact_folders)}); unknown artifact"
    return None


def assess_deploy(
    ws: Workspace, cfg: CoordinationConfig, metrics: dict[str, Any], stage: str, sha: str, source: Path | None = None
) -> DeployAssessment:
    """May artifact ``sha`` be deployed to ``stage``? Every refusal says why."""
    if stage not in cfg.rollout.stages:
        return DeployAssessment(False, f"unknown stage {stage!r}; stages are {', '.join(cfg.rollout.stages)}")
    rejected = rejected_shas(ws, cfg, metrics)
    why_rejected = f"artifact sha256 {sha[:12]} was rejected ({rejected.get(sha)}); it is never deployed again"
    prev = previous_stage(cfg, stage)
    if prev is None:
        if sha in rejected:
            return DeployAssessment(False, why_rejected)
        if source is not None:
            why = artifact_known(ws, cfg, source)
            if why:
                return DeployAssessment(False, why)
        return DeployAssessment(True, f"{stage} is the first stage; no gate precedes it")
    live = deployment.live(ws.stage_dir(prev))
    if not live:
        return DeployAssessment(
            False, f"stage {stage} would skip {prev}: nothing is deployed to {prev}", previous_stage=prev
        )
    if live["sha256"] != sha:
        return DeployAssessment(
            False,
            f"the artifact (sha256 {sha[:12]}) is not the version live in {prev} ({live['sha256'][:12]}); deploy it to {prev} first",
            previous_stage=prev,
        )
    review = review_stage(metrics, prev, sha, cfg, live["version"])
    if review.verdict != PASS:
        bad = ", ".join(f"{r.gate} {r.status}" for r in review.gates if r.status != PASS)
        return DeployAssessment(
            False, f"gates of {prev} are {review.verdict.upper()} ({bad}); promotion to {stage} refused", review, prev
        )
    if sha in rejected:
        return DeployAssessment(False, why_rejected, review, prev)
    if cfg.rollout.drill_before_promotion:
        drill = (metrics_store.evidence(metrics, prev, sha) or {}).get("drill")
        if not drill or not drill.get("passed"):
            return DeployAssessment(
                False,
                f"no passed rollback drill of {live['version']} in {prev}; drill before promotion to {stage}",
                review,
                prev,
            )
    if approval.awaiting(ws, cfg, stage, sha):
        return DeployAssessment(
            False,
            f"awaiting approval: a human must approve {live['version']} (sha256 {sha[:12]}) for {stage} "
            f"(cvagents approve --workspace {ws.root} --stage {stage})",
            review,
            prev,
            {"awaiting_approval": True},
        )
    return DeployAssessment(True, f"every gate of {prev} passed for {live['version']}", review, prev)


def check_deploy(ws: Workspace, cfg: CoordinationConfig, metrics: dict[str, Any], stage: str, sha: str) -> str | None:
    """Why deploying artifact ``sha`` to ``stage`` is not allowed, or None when it is."""
    a = assess_deploy(ws, cfg, metrics, stage, sha)
    return None if a.allowed else a.reason


# ------------------------------------------------------------------------ the controller


def controller_file(ws: Workspace) -> Path:
    return ws.reports_dir / "rollout" / "controller.json"


def last_good_version(stage_dir: Path, live: dict[str, Any], rejected: dict[str, str]) -> dict[str, Any] | None:
    """The newest earlier version in the chain that is healthy and not rejected."""
    by_name = {v["version"]: v for v in deployment.versions(stage_dir)}
    seen, name = set(), live.get("previous_version")
    while name and name not in seen:
        seen.add(name)
        v = by_name.get(name)
        if not v:
            break
        art = Path(stage_dir) / "versions" / name / v["artifact"]
        if v["sha256"] not in rejected and art.is_file() and sha256_file(art) == v["sha256"]:
            return v
        name = v.get("previous_version")
    return None


class Controller:
    def __init__(
        self,
        ws: Workspace,
        cfg: CoordinationConfig,
        record: Callable[[str, dict], None] | None = None,
        settings_hash: str | None = None,
    ):
        self.ws, self.cfg, self.record, self.settings_hash = ws, cfg, record, settings_hash

    def _decide(self, kind: str, now: str, **kw) -> dict:
        return decisions.append(self.ws, self.cfg, kind, time=now, settings_hash=self.settings_hash, **kw)

    def _rollback(
        self,
        stage: str,
        live: dict,
        now: str,
        *,
        cause: str,
        reason: str,
        rejected: dict[str, str],
        review: StageReview | None,
    ) -> dict:
        d = self.ws.stage_dir(stage)
        target = last_good_version(d, live, rejected)
        to = target["version"] if target else None
        deployment.point_to(
            d,
            to,
            action_id=f"controller:{stage}:{live['version']}",
            time=now,
            reason=f"automatic rollback of {live['version']}: {reason}",
        )
        text = f"rolled back {stage} from {live['version']} to {to or 'nothing (stage emptied)'}: {reason}"
        log.info("🚦 Rollout controller: %s", text)
        from cvagents.run import reports  # the guide's deployments log, in the executive's format

        reports.append_deployments_log(
            self.ws,
            {
                "timestamp": now[:19],
                "executions": [
                    {
                        "tool": "rollback_model",
                        "arguments": {"stage": stage},
                        "action_id": "rollout_controller",
                        "status": "succeeded",
                        "result": {"version": to, "sha256": target["sha256"] if target else None},
                    }
                ],
            },
        )
        return self._decide(
            "rollback",
            now,
            stage=stage,
            outcome="rolled_back",
            reason=text,
            sha256=live["sha256"],
            version=live["version"],
            gates=[g.as_dict() for g in review.gates] if review else [],
            evidence=review.evidence if review else {},
            cause=cause,
            rolled_back_to={"version": to, "sha256": target["sha256"] if target else None},
        )

    def review(self, now: str) -> list[dict]:
        ws, cfg = self.ws, self.cfg
        metrics = metrics_store.load(ws.metrics_file)
        state = read_json(controller_file(ws)) or {}
        seen: dict[str, Any] = state.get("stages") or {}
        approvals_seen = set(state.get("approvals_seen") or [])
        # decisions.jsonl is written before controller.json: after a crash between the two, the
        # decisions already written must not be made again.
        last_signature: dict[str, str | None] = {}
        recorded = decisions.read(ws)
        for rec in recorded:
            if rec.get("stage"):
                last_signature[rec["stage"]] = rec.get("signature")
            if rec.get("kind") == "approved":
                approvals_seen.add(f"{rec.get('stage')}:{rec.get('sha256')}")
        made: list[dict] = []
        rejected = rejected_shas(ws, cfg, metrics)
        lives: dict[str, dict] = {}
        reviews: dict[str, StageReview] = {}
        for stage in cfg.rollout.stages:
            d = ws.stage_dir(stage)
            if d.is_dir():
                deployment.recover(d)  # a drill cut short by a crash
            live = deployment.live(d)
            if live:
                lives[stage] = live
                reviews[stage] = review_stage(metrics, stage, live["sha256"], cfg, live["version"])
                if reviews[stage].verdict == FAIL:
                    rejected.setdefault(live["sha256"], f"{reviews[stage].reason} at {stage}")
        out_stages: dict[str, Any] = {}
        for stage in cfg.rollout.stages:
            live = lives.get(stage)
            if not live:
                out_stages[stage] = {"version": None, "status": "empty"}
                continue
            d = ws.stage_dir(stage)
            ok, why = deployment.verify(d)
            rev = reviews[stage]
            if not ok:
                made.append(
                    self._rollback(
                        stage,
                        live,
                        now,
                        cause="health",
                        reason=f"live artifact unhealthy ({why})",
                        rejected=rejected,
                        review=None,
                    )
                )
            elif rev.verdict == FAIL:
                made.append(
                    self._rollback(stage, live, now, cause="gate", reason=rev.reason, rejected=rejected, review=rev)
                )
            elif live["sha256"] in rejected:
                made.append(
                    self._rollback(
                        stage,
                        live,
                        now,
                        cause="rejected",
                        reason=f"this version was rejected elsewhere: {rejected[live['sha256']]}",
                        rejected=rejected,
                        review=rev,
                    )
                )
            else:
                nxt = next_stage(cfg, stage)
                waiting = rev.verdict == PASS and nxt is not None and approval.awaiting(ws, cfg, nxt, live["sha256"])
                status = {PASS: "passed", INCONCLUSIVE: "paused"}[rev.verdict]
                if waiting:
                    status = "awaiting_approval"
                sig = hashlib.sha256(
                    "|".join([live["sha256"], status] + [f"{g.gate}={g.status}" for g in rev.gates]).encode()
                ).hexdigest()[:16]
                if sig not in (seen.get(stage, {}).get("signature"), last_signature.get(stage)):
                    kind = {"passed": "gates_passed", "paused": "paused", "awaiting_approval": "awaiting_approval"}[
                        status
                    ]
                    reason = rev.reason
                    if status == "awaiting_approval":
                        reason = f"every gate of {stage} passed; {nxt} needs a human approval (cvagents approve --workspace {ws.root} --stage {nxt})"
                    elif status == "paused":
                        reason = f"rollout paused at {stage}: {rev.reason}"
                    made.append(
                        self._decide(
                            kind,
                            now,
                            stage=stage,
                            outcome=status,
                            reason=reason,
                            sha256=live["sha256"],
                            version=live["version"],
                            gates=[g.as_dict() for g in rev.gates],
                            evidence=rev.evidence,
                            next_stage=nxt,
                            signature=sig,
                        )
                    )
                    log.info(
                        "🚦 Rollout controller: %s",
                        reason
                        if status != "passed"
                        else f"every gate of {stage} passed for {live['version']}"
                        + (f"; {nxt} may follow" if nxt else ""),
                    )
                out_stages[stage] = {
                    "version": live["version"],
                    "sha256": live["sha256"],
                    "status": status,
                    "verdict": rev.verdict,
                    "reason": rev.reason,
                    "evidence": rev.evidence,
                    "signature": sig,
                }
                continue
            out_stages[stage] = {
                "version": (deployment.live(d) or {}).get("version"),
                "status": "rolled_back",
                "rolled_back": live["version"],
            }
        for a in approval.all_approvals(ws):
            key = f"{a.get('stage')}:{a.get('sha256')}"
            if key not in approvals_seen:
                approvals_seen.add(key)
                made.append(
                    self._decide(
                        "approved",
                        now,
                        stage=a.get("stage"),
                        outcome="approved",
                        sha256=a.get("sha256"),
                        version=a.get("version"),
                        reason=f"approved by {a.get('approved_by')} at {a.get('time')}"
                        + (f": {a['note']}" if a.get("note") else ""),
                        approval=a,
                    )
                )
        journaled = int(state.get("journaled_lines") or 0)
        if self.record is not None:
            all_decisions = recorded + made  # made: the records this review appended
            for rec in all_decisions[journaled:]:
                self.record("rollout_decision", rec)
            journaled = len(all_decisions)
        atomic_write_json(
            controller_file(ws),
            {
                "updated": now,
                "stages": out_stages,
                "approvals_seen": sorted(approvals_seen),
                "journaled_lines": journaled,
            },
        )
        return made


def after_heartbeat(
    ws: Workspace,
    cfg: CoordinationConfig,
    now: str,
    *,
    record: Callable[[str, dict], None] | None = None,
    settings_hash: str | None = None,
) -> list[dict]:
    """The controller's review after an executive heartbeat. Never raises: a bug here is
    logged, and the run goes on (the deploy tool still refuses whatever the gates refuse)."""
    try:
        return Controller(ws, cfg, record, settings_hash).review(now)
    except Exception:  # noqa: BLE001
        log.exception("rollout controller review failed")
        return []
