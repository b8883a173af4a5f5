"""The gates: pure functions of the metrics and the config (no file is read or written here).

- Each gate of a stage gives ``pass``, ``fail`` or ``inconclusive``. Missing data is
  inconclusive, never a pass; so is a traffic measurement made on less evidence than the stage
  asks for (``min_requests``, ``min_observed_minutes``) — except that a critical gate (P0
  incidents) fails the stage at once.
- A gate comparing the version with the champion in production (``CHAMPION_METRICS``) passes
  when its evaluation found no champion (a first rollout: nothing to compare with), and is
  inconclusive while a champion serves but the comparison was not measured.
- A stage's verdict is ``fail`` if any gate failed, else ``inconclusive`` if any is, else ``pass``.

The rollout controller (``cvagents.rollout.controller``) applies them to the workspace.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from functools import partial
from typing import Any

from cvagents.config import CoordinationConfig
from cvagents.metric_sources import CHAMPION_METRICS, DRILL, EVALUATION, TRAFFIC, source_of
from cvagents.rollout import metrics_store


class GateVerdict(StrEnum):
    """What one gate, or a whole stage, says about a version."""

    PASS = "pass"  # measured on enough evidence, and the threshold is met
    FAIL = "fail"  # measured, and the threshold is not met (a critical gate: on any evidence)
    INCONCLUSIVE = "inconclusive"  # not measured yet, or on too little evidence: never a pass


PASS, FAIL, INCONCLUSIVE = GateVerdict.PASS, GateVerdict.FAIL, GateVerdict.INCONCLUSIVE

#: the guide's five thresholds and the two against the champion (what agents and dashboards
#: show), each read from the gate on the first of these metrics that some gate names
SUMMARY_METRICS: dict[str, tuple[str, ...]] = {
    "ndcg_at_10_min": ("ndcg_at_10_ci95_low", "ndcg_at_10"),
    "latency_p95_ms_max": ("latency_p95_ms", "serve_latency_p95_ms"),
    "slo_compliance_min": ("slo_compliance",),
    "p0_incidents_max": ("p0_incidents",),
    "ndcg_delta_min": ("ndcg_delta_ci95_low", "ndcg_delta"),
    "latency_p95_ratio_max": ("latency_p95_ratio",),
}
NO_CHAMPION = "no champion in production: nothing to compare with"


@dataclass(frozen=True)
class GateResult:
    gate: str
    status: GateVerdict
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
    verdict: GateVerdict
    gates: list[GateResult]
    evidence: dict[str, Any]
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "gates"}, "gates": [g.as_dict() for g in self.gates]}

    def as_event(self) -> dict[str, Any]:
        """The review as the attributes of a trace event (``cvagents.tracing``)."""
        return {
            "cvagents.stage": self.stage,
            "cvagents.version": self.version,
            "cvagents.sha256": self.sha256,
            "cvagents.verdict": self.verdict,
            "cvagents.reason": self.reason,
            "cvagents.gates": [f"{g.gate}={g.status}" for g in self.gates],
        }


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
    for name in ("ndcg_at_10_ci95", "ndcg_delta_ci95"):
        ci = rec.get(name)
        if ci and metric in (f"{name}_low", f"{name}_high"):
            return ci[0] if metric.endswith("low") else ci[1]
    return None


def _unmeasured_comparison(ev: dict[str, Any] | None, metric: str) -> tuple[GateVerdict, str] | None:
    """A comparison with the champion that was not measured: a pass when the evaluation found
    no champion, inconclusive when one serves; None for any other metric or no evaluation."""
    rec = (ev or {}).get("evaluation")
    if metric not in CHAMPION_METRICS or not rec or "champion" not in rec:
        return None
    champ = rec["champion"]
    if champ is None:
        return PASS, NO_CHAMPION
    name = champ.get("version") or champ.get("name") or "in production"
    why = f": {champ['error']}" if champ.get("error") else ""
    return INCONCLUSIVE, f"{metric} not measured against the champion {name}{why}"


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


_NOT_MEASURED = {DRILL: "no rollback drill", TRAFFIC: "no traffic replay", EVALUATION: "no evaluation"}


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
        result = partial(GateResult, name, threshold=thr, metric=g.metric, source=src, critical=g.critical)
        v = metric_value(ev, g.metric)
        unmeasured = _unmeasured_comparison(ev, g.metric) if v is None else None
        if unmeasured:
            results.append(result(status=unmeasured[0], value=None, detail=unmeasured[1]))
            continue
        if v is None:
            detail = f"{_NOT_MEASURED[src]} of this version at {stage}"
            results.append(result(status=INCONCLUSIVE, value=None, detail=detail))
            continue
        ok = _compare(g.op, v, g.threshold)
        if src == TRAFFIC and not evs["sufficient"]:
            if not ok and g.critical:
                detail = f"critical: {g.metric} {_fmt(v)} fails at once ({_evidence_text(evs)})"
                results.append(result(status=FAIL, value=v, detail=detail, critical=True))
            else:
                detail = f"too little evidence: {_evidence_text(evs)}"
                results.append(result(status=INCONCLUSIVE, value=v, detail=detail))
            continue
        detail = "" if ok else f"{g.metric} {_fmt(v)} does not satisfy {thr}"
        if g.metric in ("ndcg_at_10_ci95_low", "ndcg_delta_ci95_low"):
            e = (ev or {}).get("evaluation") or {}
            ci = e.get(g.metric.removesuffix("_low"))
            what = (
                ""
                if g.metric == "ndcg_at_10_ci95_low"
                else f" of the NDCG@10 difference with the champion {(e.get('champion') or {}).get('version')}"
            )
            detail = f"lower bound of the 95% CI{what} {ci}" + (f"; {detail}" if detail else "")
        results.append(result(status=PASS if ok else FAIL, value=v, detail=detail))
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


def _reason(v: GateVerdict, results: list[GateResult]) -> str:
    if v == PASS:
        return "every gate passed"
    bad = [r for r in results if r.status == v]
    if v == FAIL:
        return "failed: " + "; ".join(
            f"{r.gate} {_fmt(r.value)} (needs {r.threshold}){' [critical]' if r.critical else ''}" for r in bad
        )
    return "inconclusive: " + "; ".join(f"{r.gate} ({r.detail})" for r in bad)


def verdict(results: list[GateResult]) -> GateVerdict:
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
    """The guide's five thresholds and the two against the champion, by the metric each gate reads (for agents and dashboards);
    None where no gate reads that metric."""
    by_metric = {g.metric: g for g in cfg.rollout.gates.values()}
    used = {n for p in cfg.rollout.stages.values() for n in p.gates}

    def first(metrics: tuple[str, ...]) -> Any:
        return next((by_metric[m].threshold for m in metrics if m in by_metric), None)

    return {
        **{key: first(metrics) for key, metrics in SUMMARY_METRICS.items()},
        "rollback_test_required": any(cfg.rollout.gates[n].metric == "rollback_test_passed" for n in used)
        or cfg.rollout.drill_before_promotion,
        "slo_latency_objective_ms": cfg.rollout.slo.latency_objective_ms,
    }


def summary_key(metric: str) -> str | None:
    """Which of the guide's thresholds a gate on ``metric`` sets (``None``: none of them)."""
    return next((key for key, metrics in SUMMARY_METRICS.items() if metric in metrics), None)
