"""``runs/report/metrics.json``: the evidence per stage and model version, and its history.

Tools write one record per file under ``runs/report/evaluations/`` (``kind``: ``evaluation``,
``traffic`` or ``rollback_drill``); ``collect`` merges the new ones into metrics.json
(atomically), so the merge is idempotent and a crash between the two leaves nothing half-merged.

metrics.json holds:

- ``evidence[stage][sha256]``: what the gates read — the latest ``evaluation``, the ``traffic``
  replays accumulated (requests, errors, observed minutes, incidents) and the latest ``drill``
  of that version at that stage;
- ``stages[stage]``: a flat summary of the evidence of the version measured last at the stage
  (the gate metrics together: NDCG@10 and its CI, latency, SLO compliance, P0 incidents, ...);
- ``history``: after every evaluation or traffic record, oldest first, that summary for the
  record's stage and version as it stood then (``id``/``kind``/``time`` name the record; the
  record itself stays in ``evaluations/``) — the history per stage and model version;
- ``latest``: the last history entry;
- ``rollback_drills[stage]``: the latest drill per stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cvagents.durability.atomic import atomic_write_json, read_json

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
    "ndcg_delta",
    "ndcg_delta_ci95",
    "latency_p95_ratio",
)
TRAFFIC_FIELDS = (
    "slo_compliance",
    "error_rate",
    "p0_incidents",
    "top10_overlap",
    "serve_latency_p50_ms",
    "serve_latency_p95_ms",
    "serve_latency_p99_ms",
    "candidate_requests",
    "observed_minutes",
    "requests",
    "replays",
)


def empty() -> dict[str, Any]:
    return {
        "updated": None,
        "latest": None,
        "stages": {},
        "evidence": {},
        "rollback_drills": {},
        "history": [],
        "merged": [],
    }


def load(metrics_file: Path) -> dict[str, Any]:
    m = read_json(metrics_file) or empty()
    m.setdefault("evidence", {})
    return m


def record_evaluation(evaluations_dir: Path, record: dict[str, Any]) -> Path:
    """Write one record (``record['id']`` names it)."""
    path = Path(evaluations_dir) / f"{record['id']}.json"
    atomic_write_json(path, record)
    return path


def evidence(metrics: dict[str, Any], stage: str, sha: str | None) -> dict[str, Any] | None:
    """What is known about version ``sha`` at ``stage``: {evaluation, traffic, drill}."""
    if not sha:
        return None
    return ((metrics.get("evidence") or {}).get(stage) or {}).get(sha)


def accumulate_traffic(agg: dict[str, Any] | None, rec: dict[str, Any]) -> dict[str, Any]:
    """Add one replay to a version's traffic evidence at a stage."""
    a = dict(
        agg
        or {
            "replays": 0,
            "requests": 0,
            "candidate_requests": 0,
            "errors": 0,
            "within_slo": 0,
            "observed_minutes": 0.0,
            "p0_incidents": 0,
            "incidents": [],
            "overlap_sum": 0.0,
            "overlap_n": 0,
            "replay_ids": [],
            "first_time": rec.get("time"),
        }
    )
    a["replays"] += 1
    for k in ("requests", "candidate_requests", "errors", "within_slo", "p0_incidents"):
        a[k] += int(rec.get(k) or 0)
    a["observed_minutes"] = round(a["observed_minutes"] + float(rec.get("observed_minutes") or 0), 6)
    a["incidents"] = (a["incidents"] + list(rec.get("incidents") or []))[-20:]
    if rec.get("top10_overlap") is not None and rec.get("overlap_n"):
        a["overlap_sum"] += rec["top10_overlap"] * rec["overlap_n"]
        a["overlap_n"] += rec["overlap_n"]
    n = a["candidate_requests"]
    a["slo_compliance"] = round(a["within_slo"] / n, 6) if n else None
    a["error_rate"] = round(a["errors"] / n, 6) if n else None
    a["top10_overlap"] = round(a["overlap_sum"] / a["overlap_n"], 6) if a["overlap_n"] else None
    for q in ("serve_latency_p50_ms", "serve_latency_p95_ms", "serve_latency_p99_ms"):
        vals = [v for v in (a.get(q), rec.get(q)) if v is not None]
        a[q] = max(vals) if vals else None  # the worst replay: quantiles do not add up
    a["replay_ids"] = (a["replay_ids"] + [rec["id"]])[-50:]
    a["last_time"] = rec.get("time")
    a["traffic_weight"] = rec.get("traffic_weight")
    return a


def summary(ev: dict[str, Any] | None) -> dict[str, Any]:
    """One flat record of a version's evidence at a stage (evaluation + traffic + drill)."""
    if not ev:
        return {}
    out: dict[str, Any] = {k: None for k in GATE_FIELDS}
    out.update(ev.get("evaluation") or {})
    t = ev.get("traffic") or {}
    for k in TRAFFIC_FIELDS:
        if k in t:
            out[k] = t[k]
    d = ev.get("drill")
    out["rollback_test_passed"] = d.get("passed") if d else None
    for k in ("stage", "model_sha256", "version"):
        out[k] = ev.get(k, out.get(k))
    out["time"] = max(
        (x.get("time") or x.get("last_time") or "" for x in (ev.get("evaluation"), t, d) if x), default=None
    )
    return out


def merge_record(metrics: dict[str, Any], rec: dict[str, Any]) -> None:
    """Fold one record into metrics (in memory)."""
    metrics["merged"].append(rec["id"])
    kind, stage, sha = rec.get("kind"), rec.get("stage"), rec.get("model_sha256")
    ev = None
    if stage and sha:
        ev = (
            metrics["evidence"]
            .setdefault(stage, {})
            .setdefault(
                sha,
                {
                    "stage": stage,
                    "model_sha256": sha,
                    "version": rec.get("version"),
                    "evaluation": None,
                    "traffic": None,
                    "drill": None,
                },
            )
        )
        if rec.get("version"):
            ev["version"] = rec["version"]
    if kind == "rollback_drill":
        if stage:
            metrics["rollback_drills"][stage] = rec
        if ev is not None:
            ev["drill"] = rec
    elif ev is not None:
        if kind == "traffic":
            ev["traffic"] = accumulate_traffic(ev["traffic"], rec)
        else:
            ev["evaluation"] = rec
    if ev is not None:
        metrics["stages"][stage] = summary(ev)
        if kind != "rollback_drill":
            entry = {
                **metrics["stages"][stage],
                "id": rec["id"],
                "kind": kind,
                "time": rec.get("time"),
                "action_id": rec.get("action_id"),
            }
            metrics["history"].append(entry)
            metrics["latest"] = entry
    elif kind != "rollback_drill":
        metrics["history"].append(rec)
        metrics["latest"] = rec


def collect(metrics_file: Path, evaluations_dir: Path, now: str) -> dict[str, Any]:
    """Merge every record not yet merged; returns the metrics and what was new."""
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
        merge_record(metrics, rec)
    if new or metrics.get("updated") is None:
        metrics["updated"] = now
        atomic_write_json(metrics_file, metrics)
    return {"metrics": metrics, "new": new}
