"""Which metrics exist and which source of evidence produces each: the evaluation (on the
validation set), traffic replay, or the rollback drill.

A gate may name any metric here or listed under ``evaluation.metrics``; the config checks that
when it loads, the gates use it to know what evidence a metric needs.
"""

from __future__ import annotations

EVALUATION, TRAFFIC, DRILL = "evaluation", "traffic", "drill"

#: every metric the built-in sources produce, and which source produces it
METRIC_SOURCES: dict[str, str] = {
    # the evaluator, on the validation set
    "ndcg_at_10": EVALUATION,
    "ndcg_at_10_ci95_low": EVALUATION,
    "ndcg_at_10_ci95_high": EVALUATION,
    "recall_at_10": EVALUATION,
    "mrr": EVALUATION,
    "latency_p50_ms": EVALUATION,
    "latency_p95_ms": EVALUATION,
    "latency_p99_ms": EVALUATION,
    # the evaluator, against the champion in production on the same queries (paired)
    "ndcg_delta": EVALUATION,
    "ndcg_delta_ci95_low": EVALUATION,
    "ndcg_delta_ci95_high": EVALUATION,
    "latency_p95_ratio": EVALUATION,
    # traffic replay through the stage's router (accumulated per stage and version)
    "slo_compliance": TRAFFIC,
    "error_rate": TRAFFIC,
    "p0_incidents": TRAFFIC,
    "top10_overlap": TRAFFIC,
    "serve_latency_p50_ms": TRAFFIC,
    "serve_latency_p95_ms": TRAFFIC,
    "serve_latency_p99_ms": TRAFFIC,
    "candidate_requests": TRAFFIC,
    "observed_minutes": TRAFFIC,
    # the rollback drill
    "rollback_test_passed": DRILL,
}

#: metrics that compare a candidate with the champion: with no champion in production (a first
#: rollout) there is nothing to compare with, and a gate on them passes
CHAMPION_METRICS = frozenset({"ndcg_delta", "ndcg_delta_ci95_low", "ndcg_delta_ci95_high", "latency_p95_ratio"})


def source_of(metric: str) -> str:
    """Where a metric comes from; a custom evaluator's own metrics come from the evaluation."""
    return METRIC_SOURCES.get(metric, EVALUATION)


def evaluation_metrics(cfg) -> set[str]:
    """Metric names an evaluation may set (built-in evaluation metrics + the configured extras)."""
    return {m for m, s in METRIC_SOURCES.items() if s == EVALUATION} | set(cfg.evaluation.metrics)
