"""Every rollout decision, recorded with what it was based on.

``reports/rollout/decisions.jsonl`` gets one JSON line per decision — promotion, deployment,
refusal, automatic rollback, pause, gates passed, awaiting approval, approval seen — with the
measurements, the thresholds used, a hash of the configuration and the artifacts' sha256. The
rollout controller copies each line into the session journal (kind ``rollout_decision``) after
every heartbeat, so the journal holds them too.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cvagents.rollout import deployment


def decisions_file(ws) -> Path:
    return ws.reports_dir / "rollout" / "decisions.jsonl"


def fingerprint(cfg) -> str:
    """Hash of the effective coordination config (stage plan, gates, thresholds, evaluator)."""
    canon = json.dumps(cfg.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


def thresholds(cfg, stage: str | None) -> dict[str, Any]:
    """The thresholds a decision about ``stage`` used: its evidence minimums and its gates."""
    if stage is None or stage not in cfg.rollout.stages:
        return {}
    plan = cfg.rollout.stages[stage]
    gates = {}
    for name in plan.gates:
        g = cfg.rollout.gates[name]
        gates[name] = {"metric": g.metric, "op": g.op, "threshold": g.threshold, "critical": g.critical}
    return {
        "stage": stage,
        "traffic": plan.traffic,
        "min_requests": plan.min_requests,
        "min_observed_minutes": plan.min_observed_minutes,
        "gates": gates,
        "slo_latency_objective_ms": cfg.rollout.slo.latency_objective_ms,
        "p0_error_rate": cfg.rollout.incidents.p0_error_rate,
    }


def stage_artifacts(ws, cfg) -> dict[str, Any]:
    """The version and sha256 live in every stage right now."""
    out = {}
    for stage in cfg.rollout.stages:
        live = deployment.live(ws.stage_dir(stage))
        out[stage] = {"version": live["version"], "sha256": live["sha256"]} if live else None
    return out


def append(
    ws,
    cfg,
    kind: str,
    *,
    stage: str | None,
    outcome: str,
    reason: str,
    time: str | None,
    sha256: str | None = None,
    version: str | None = None,
    gates: list[dict] | None = None,
    evidence: dict | None = None,
    thresholds_stage: str | None = None,
    source: str = "controller",
    action_id: str | None = None,
    settings_hash: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Append one decision (flushed and fsynced) and return it."""
    measurements = {g["metric"]: g["value"] for g in gates or [] if g.get("metric") and g.get("value") is not None}
    if evidence:
        measurements.update(
            {k: evidence[k] for k in ("candidate_requests", "observed_minutes", "replays") if k in evidence}
        )
    rec = {
        "time": time,
        "kind": kind,
        "source": source,
        "stage": stage,
        "outcome": outcome,
        "reason": reason,
        "version": version,
        "sha256": sha256,
        "action_id": action_id,
        "measurements": measurements,
        "gates": gates or [],
        "evidence": evidence or {},
        "thresholds": thresholds(cfg, thresholds_stage if thresholds_stage is not None else stage),
        "config_hash": fingerprint(cfg),
        "settings_hash": settings_hash,
        "artifacts": {"subject": sha256, "stages": stage_artifacts(ws, cfg)},
        **extra,
    }
    rec = {"id": "dec_" + hashlib.sha256(json.dumps(rec, sort_keys=True, default=str).encode()).hexdigest()[:12], **rec}
    path = decisions_file(ws)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(rec, ensure_ascii=False, default=str) + "\n"
    with open(path, "a+b") as f:
        if f.seek(0, os.SEEK_END) > 0:  # a line torn by a crash must not swallow this one
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                line = "\n" + line
        f.write(line.encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())
    return rec


def read(ws) -> list[dict[str, Any]]:
    """Every decision, oldest first (a torn last line, from a crash mid-write, is skipped)."""
    path = decisions_file(ws)
    if not path.is_file():
        return []
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def rebuild(ws, journal_records) -> int:
    """Rewrite decisions.jsonl from the journal's ``rollout_decision`` records (each once, in
    journal order) and point the controller's journal cursor past them; returns how many.
    Decisions a tool recorded after the last controller review are not in the journal yet:
    they are kept from the current file, after the journaled ones."""
    from cvagents.durability.atomic import atomic_write_json, atomic_write_text, read_json

    seen, lines = set(), []
    for r in journal_records:
        kind, data = (r.kind, r.data) if hasattr(r, "kind") else (r["kind"], r["data"])
        if kind == "rollout_decision" and data.get("id") not in seen:
            seen.add(data.get("id"))
            lines.append(data)
    journaled = len(lines)
    lines += [d for d in read(ws) if d.get("id") not in seen]
    atomic_write_text(decisions_file(ws), "".join(json.dumps(d, ensure_ascii=False, default=str) + "\n" for d in lines))
    cfile = ws.reports_dir / "rollout" / "controller.json"
    state = read_json(cfile) or {}
    atomic_write_json(cfile, {**state, "journaled_lines": journaled})
    return len(lines)
