"""``runs/report/metrics.json``: the latest measurements per stage, and their history.

Tools write one evaluation record per file under ``runs/report/evaluations/``;
``collect`` merges the new ones into metrics.json (atomically), so the merge is idempotent and
a crash between the two leaves nothing half-merged.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .atomic import atomic_write_json, read_json

GATE_FIELDS = (
    "ndcg_at_10",
    "ndcg_at_10_ci95",
    "recall_at_10",
    "mrr",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "slo_compliance",
    "p0_incidents",
)


def empty() -> dict[str, Any]:
    return {"updated": None, "latest": None, "stages": {}, "rollback_drills": {}, "history": [], "merged": []}


def load(metrics_file: Path) -> dict[str, Any]:
    return read_json(metrics_file) or empty()


def record_evaluation(evaluations_dir: Path, record: dict[str, Any]) -> Path:
    """Write one evaluation record (``record['id']`` names it)."""
    path = Path(evaluations_dir) / f"{record['id']}.json"
    atomic_write_json(path, record)
    return path


def collect(metrics_file: Path, evaluations_dir: Path, now: str) -> dict[str, Any]:
    """Merge every evaluation record not yet merged; returns the metrics and what was new."""
    metrics = load(metrics_file)
    merged = set(metrics.get("merged", []))
    new = []
    if Path(evaluations_dir).is_dir():
        for f in sorted(Path(evaluations_dir).glob("*.json")):
            if f.stem in merged:
                continue
            rec = read_json(f)
            if not rec:
                continue
            new.append(rec)
    new.sort(key=lambda r: (r.get("time") or "", r["id"]))
    for rec in new:
        metrics["merged"].append(rec["id"])
        if rec.get("kind") == "rollback_drill":
            metrics["rollback_drills"][rec["stage"]] = rec
        else:
            metrics["history"].append(rec)
            metrics["latest"] = rec
            if rec.get("stage"):
                metrics["stages"][rec["stage"]] = rec
    if new or metrics.get("updated") is None:
        metrics["updated"] = now
        atomic_write_json(metrics_file, metrics)
    return {"metrics": metrics, "new": new}
