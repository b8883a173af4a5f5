"""Stages and gates: the rollout controller's side, which no agent can talk its way past.

Each gate gives ``pass``, ``fail`` or ``inconclusive``; missing data is inconclusive, never a
pass. A model may enter a stage only from the stage before it, and only when every gate of that
stage passed for the very artifact (same sha256) being promoted.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from . import deployment
from .config import CoordinationConfig
from .workspace import Workspace

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"


@dataclass(frozen=True)
class GateResult:
    gate: str
    status: str
    value: Any
    threshold: str
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_gates(metrics: dict[str, Any], stage: str, live_sha: str | None, cfg: CoordinationConfig) -> list[GateResult]:
    """The gates of ``stage`` for the live artifact ``live_sha``."""
    g = cfg.rollout.gates
    rec = (metrics.get("stages") or {}).get(stage)
    if rec and live_sha and rec.get("model_sha256") != live_sha:
        rec = None  # measurements of another version say nothing about this one
    drill = (metrics.get("rollback_drills") or {}).get(stage)
    if drill and live_sha and drill.get("model_sha256") != live_sha:
        drill = None

    def gate(name: str, key: str, threshold: str, ok) -> GateResult:
        if not rec or rec.get(key) is None:
            return GateResult(name, INCONCLUSIVE, None, threshold, f"no {key} measured for the live version")
        v = rec[key]
        return GateResult(name, PASS if ok(v) else FAIL, v, threshold)

    results = []
    if rec and rec.get("ndcg_at_10_ci95"):
        low = rec["ndcg_at_10_ci95"][0]
        results.append(
            GateResult(
                "ndcg_at_10",
                PASS if low >= g.ndcg_at_10_min else FAIL,
                low,
                f">= {g.ndcg_at_10_min} (lower bound of the 95% CI)",
                f"NDCG@10 {rec.get('ndcg_at_10')}, CI {rec['ndcg_at_10_ci95']}",
            )
        )
    else:
        results.append(gate("ndcg_at_10", "ndcg_at_10", f">= {g.ndcg_at_10_min}", lambda v: v >= g.ndcg_at_10_min))
    results.append(gate("latency_p95_ms", "latency_p95_ms", f"< {g.latency_p95_ms_max}", lambda v: v < g.latency_p95_ms_max))
    results.append(gate("slo_compliance", "slo_compliance", f">= {g.slo_compliance_min}", lambda v: v >= g.slo_compliance_min))
    results.append(gate("p0_incidents", "p0_incidents", f"<= {g.p0_incidents_max}", lambda v: v <= g.p0_incidents_max))
    if g.rollback_test_required:
        if not drill:
            results.append(GateResult("rollback_test", INCONCLUSIVE, None, "passed", "no rollback drill for the live version"))
        else:
            results.append(GateResult("rollback_test", PASS if drill.get("passed") else FAIL, drill.get("passed"), "passed", drill.get("detail", "")))
    return results


def verdict(results: list[GateResult]) -> str:
    """``fail`` if any gate failed, else ``inconclusive`` if any is, else ``pass``."""
    statuses = {r.status for r in results}
    if FAIL in statuses:
        return FAIL
    if INCONCLUSIVE in statuses:
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


def check_deploy(ws: Workspace, cfg: CoordinationConfig, metrics: dict[str, Any], stage: str, sha: str) -> str | None:
    """Why deploying artifact ``sha`` to ``stage`` is not allowed, or None when it is."""
    if stage not in cfg.rollout.stages:
        return f"unknown stage {stage!r}; stages are {', '.join(cfg.rollout.stages)}"
    prev = previous_stage(cfg, stage)
    if prev is None:
        return None
    live = deployment.live(ws.stage_dir(prev))
    if not live:
        return f"stage {stage} would skip {prev}: nothing is deployed to {prev}"
    if live["sha256"] != sha:
        return f"the artifact (sha256 {sha[:12]}) is not the version live in {prev} ({live['sha256'][:12]}); deploy it to {prev} first"
    results = evaluate_gates(metrics, prev, sha, cfg)
    v = verdict(results)
    if v != PASS:
        bad = ", ".join(f"{r.gate} {r.status}" for r in results if r.status != PASS)
        return f"gates of {prev} are {v.upper()} ({bad}); promotion to {stage} refused"
    return None
