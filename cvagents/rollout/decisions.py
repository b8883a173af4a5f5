"""Every rollout decision, recorded with what it was based on.

One record per decision — promotion, deployment, refusal, automatic rollback, pause, gates
passed, awaiting approval, approval seen — with the measurements, the thresholds used, a hash of
the configuration and the artifacts' sha256. Inside a run each record is journaled first (kind
``rollout_decision``, through the ``record`` callback the run gives the controller and the
tools), then its line in ``reports/rollout/decisions.jsonl`` is rendered from the journaled
record: the file is a report of the journal, and ``rebuild`` writes it again from the journal.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cvagents import tracing
from cvagents.durability.atomic import atomic_write_text
from cvagents.durability.journal import Record
from cvagents.rollout import deployment

#: the journal record kind of a decision
JOURNAL_KIND = "rollout_decision"

#: journals one record and returns it as the journal holds it (``Coordinator.record``); a
#: callback that returns None leaves the record as it was built
Recorder = Callable[[str, dict], Record | None]


def decisions_file(ws) -> Path:
    return ws.decisions_file


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
    record: Recorder | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Make one decision: journal it through ``record`` (when given), then append its line
    (flushed and fsynced); returns it as journaled."""
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
    if record is not None:
        held = record(JOURNAL_KIND, rec)
        if held is not None:
            rec = held.data  # the line is rendered from the record as the journal holds it
    write_line(ws, rec)
    tracing.event("cvagents.rollout_decision", event_attributes(rec))
    return rec


def event_attributes(rec: dict[str, Any]) -> dict[str, Any]:
    """A decision as the attributes of a trace event (``cvagents.tracing``) on the span it
    was made in: the heartbeat's (the controller's review) or a tool call's (a deployment)."""
    return {
        "cvagents.decision_id": rec.get("id"),
        "cvagents.kind": rec.get("kind"),
        "cvagents.source": rec.get("source"),
        "cvagents.stage": rec.get("stage"),
        "cvagents.outcome": rec.get("outcome"),
        "cvagents.reason": rec.get("reason"),
        "cvagents.version": rec.get("version"),
        "cvagents.sha256": rec.get("sha256"),
        "cvagents.action_id": rec.get("action_id"),
        "cvagents.gates": [f"{g.get('gate')}={g.get('status')}" for g in rec.get("gates") or []],
    }


def render(rec: dict[str, Any]) -> str:
    """A decision's line in decisions.jsonl, in the journal's form (keys sorted), so the line is
    the same whether it is written as the decision is made or rebuilt from the journal."""
    return json.dumps(rec, ensure_ascii=False, default=str, sort_keys=True) + "\n"


def write_line(ws, rec: dict[str, Any]) -> None:
    """Append a decision's line (flushed and fsynced); a line torn by a crash is closed first."""
    path = decisions_file(ws)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = render(rec)
    with open(path, "a+b") as f:
        if f.seek(0, os.SEEK_END) > 0:  # a line torn by a crash must not swallow this one
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                line = "\n" + line
        f.write(line.encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())


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


def journaled(records: Iterable[Any]) -> list[dict[str, Any]]:
    """The decisions among journal records (``Record``s or ``{"kind", "data"}`` dicts), each
    once, in journal order."""
    seen, out = set(), []
    for r in records:
        kind, data = (r.kind, r.data) if hasattr(r, "kind") else (r["kind"], r["data"])
        if kind == JOURNAL_KIND and data.get("id") not in seen:
            seen.add(data.get("id"))
            out.append(data)
    return out


def catch_up(ws, records: Iterable[Any]) -> list[dict[str, Any]]:
    """Append the lines of journaled decisions the file does not hold yet (a run killed between
    journaling a decision and writing its line); returns those decisions."""
    have = {d.get("id") for d in read(ws)}
    missing = [d for d in journaled(records) if d.get("id") not in have]
    for d in missing:
        write_line(ws, d)
    return missing


def rebuild(ws, journal_records: Iterable[Any]) -> int:
    """Rewrite decisions.jsonl from the journal's decisions (each once, in journal order);
    returns how many. Lines the journal does not hold (made outside a run, or by a run that is
    writing beside this rebuild) are kept from the current file, after the journaled ones."""
    lines = journaled(journal_records)
    ids = {d.get("id") for d in lines}
    lines += [d for d in read(ws) if d.get("id") not in ids]
    text = "".join(render(d) for d in lines)
    path = decisions_file(ws)
    if lines and not (path.is_file() and path.read_text(encoding="utf-8") == text):
        atomic_write_text(path, text)
    return len(lines)
