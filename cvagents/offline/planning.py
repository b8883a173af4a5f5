"""The offline moderator's plan: decisions, go/no-go, risks and the prioritised actions,
computed by rules from the state snapshot (``cvagents.rollout.state.snapshot``). The other
roles' words are in ``voices``.

Deterministic: the same snapshot always gives the same words.
"""

from __future__ import annotations

import math
from typing import Any

STAGE_WORDS = {
    "shadow": "shadow",
    "5_percent": "5%",
    "20_percent": "20%",
    "50_percent": "50%",
    "production": "production",
}


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if v < 10 else f"{v:.2f}"
    if isinstance(v, list):
        return "[" + ", ".join(fmt(x) for x in v) + "]"
    return "—" if v is None else str(v)


def gates_of(state: dict) -> list[dict]:
    return (state.get("current") or {}).get("gates") or []


# ------------------------------------------------------------------------------ the plan


def _act(action: str, owner: str, priority: str, duration: str, criteria: str) -> dict:
    return {
        "action": action,
        "owner": owner,
        "priority": priority,
        "estimated_duration": duration,
        "success_criteria": criteria,
    }


SOURCE_BY_GATE = {
    "ndcg_at_10": "evaluation",
    "latency_p95_ms": "evaluation",
    "slo_compliance": "traffic",
    "p0_incidents": "traffic",
    "rollback_test": "drill",
    "evidence": "traffic",
}


def _source(g: dict) -> str:
    return g.get("source") or SOURCE_BY_GATE.get(g["gate"], "evaluation")


def _criteria(thr: dict) -> str:
    parts = []
    if thr.get("ndcg_at_10_min") is not None:
        parts.append(f"NDCG@10 lower CI bound >= {thr['ndcg_at_10_min']}")
    if thr.get("latency_p95_ms_max") is not None:
        parts.append(f"latency P95 < {thr['latency_p95_ms_max']:g}ms")
    return ", ".join(parts) or "Metrics recorded for the live version"


def replay_minutes(state: dict, stage: str, evidence: dict | None = None) -> int:
    """Simulated minutes of traffic that give ``stage`` the evidence its plan asks for."""
    plan = (state.get("plan") or {}).get(stage) or {}
    rp = state.get("replay") or {}
    rpm, default, most = rp.get("requests_per_minute", 120), rp.get("default_minutes", 10), rp.get("max_minutes", 240)
    w = plan.get("traffic", 0.0)
    share = 1.0 if w <= 0 else w
    ev = evidence or {}
    need = max(
        plan.get("min_observed_minutes", 0) - (ev.get("observed_minutes") or 0),
        (plan.get("min_requests", 0) - (ev.get("candidate_requests") or 0)) / (rpm * share) if rpm * share > 0 else 0,
    )
    minutes = math.ceil(need) if need > 0 else default
    return int(max(1, min(most, minutes)))


def _evaluate(stage: str, thr: dict, priority: str = "high") -> dict:
    return _act(
        f"Evaluate the version live in {stage} (deployment/{stage}) on the validation set data/validation_set.",
        "latency_analyst",
        priority,
        "3min",
        _criteria(thr),
    )


def _replay(state: dict, stage: str, evidence: dict | None = None, priority: str = "high") -> dict:
    m = replay_minutes(state, stage, evidence)
    thr = state["thresholds"]
    slo = (
        f"SLO compliance >= {thr['slo_compliance_min']}"
        if thr.get("slo_compliance_min") is not None
        else "SLO compliance measured"
    )
    if (
        stage == (state.get("stages_order") or ["shadow"])[0]
        and ((state.get("plan") or {}).get(stage) or {}).get("traffic", 0) == 0
    ):
        text = f"Replay {m} minutes of live traffic mirrored to the {stage} stage (compared, never served) and record latency, errors, SLO compliance and P0 incidents."
    else:
        text = f"Replay {m} minutes of live traffic through the {STAGE_WORDS.get(stage, stage)} router of the {stage} stage and record latency, errors, SLO compliance and P0 incidents."
    return _act(
        text,
        "compliance_monitor",
        priority,
        "3min",
        f"{slo}, zero P0 incidents, enough requests and observed minutes for {stage}",
    )


def _drill(stage: str, priority: str = "high") -> dict:
    return _act(
        f"Run the rollback drill on the {stage} stage: roll back, check health, roll forward, verify the checksum.",
        "rollback_officer",
        priority,
        "2min",
        "Drill passes: previous version healthy, live checksum restored",
    )


def _evidence_actions(state: dict, stage: str, gates: list[dict], thr: dict) -> list[dict]:
    missing = {_source(g) for g in gates if g["status"] == "inconclusive"}
    out = []
    if "evaluation" in missing:
        out.append(_evaluate(stage, thr))
    if "traffic" in missing:
        out.append(_replay(state, stage, (state.get("current") or {}).get("evidence")))
    if "drill" in missing:
        out.append(_drill(stage))
    return out


def plan(state: dict) -> dict:
    """Decisions and actions for this state: sensible for every rollout state, never padded."""
    thr = state["thresholds"]
    art = state["artifacts"]
    cur = state.get("current")
    nxt = state.get("next_stage")
    ro = state.get("rollout") or {}
    first = (state.get("stages_order") or ["shadow"])[0]
    decisions, risks, actions = [], [], []
    go = None
    collect = _act(
        "Collect metrics into runs/report/metrics.json and report every deployed stage's gates.",
        "compliance_monitor",
        "medium",
        "2min",
        "metrics.json updated with history; each gate reported pass/fail/inconclusive",
    )
    model = art["model"] or "research/v1_production.pth"
    deploy_first = _act(
        f"Deploy V1.0 ({model}) to the {first} stage.",
        "ops_commander",
        "high",
        "5min",
        f"Model deployed to deployment/{first} with a manifest whose sha256 matches",
    )

    if not art["model"] or not art["validation_set"]:
        decisions.append(
            {
                "decision": "Create the V1.0 model artifacts before anything else",
                "rationale": "research/v1_production.pth or data/validation_set/ is missing; nothing can be deployed or evaluated without them",
            }
        )
        actions += [
            _act(
                "Create the V1 model artifacts: train research/v1_production.pth and write the validation set data/validation_set/.",
                "integration_engineer",
                "high",
                "2min",
                "research/v1_production.pth and data/validation_set/dataset_info.json exist",
            ),
            _act(
                "Check that the new artifacts exist: research/v1_production.pth, data/validation_set/dataset_info.json.",
                "infra_guardian",
                "high",
                "1min",
                "Both files present",
            ),
            deploy_first,
            _evaluate(first, thr),
            _replay(state, first),
            _drill(first, "medium"),
            collect,
        ]
        go = {"stage": first, "decision": "hold", "reason": "no artifacts yet"}
    elif cur is None:
        if art["model_rejected"]:
            why = (ro.get("rejected") or {}).get((art.get("model_sha256") or "")[:12], "it failed a gate earlier")
            decisions.append(
                {
                    "decision": "Do not redeploy the current artifact",
                    "rationale": f"it was rejected by the rollout controller ({why}); a new candidate is needed",
                }
            )
            actions += [
                _act(
                    f"Investigate the rejected candidate: run research/evaluate_model.py --model {model} --validation-set data/validation_set.",
                    "latency_analyst",
                    "high",
                    "3min",
                    "Per-metric report explains which gate failed",
                ),
                _act(
                    "Check that the essential files exist: research/v1_production.pth, runs/report/metrics.json, data/validation_set/dataset_info.json.",
                    "infra_guardian",
                    "medium",
                    "1min",
                    "All essential files present",
                ),
                collect,
            ]
            risks.append("The only candidate failed its gates; the rollout is stalled until a better model exists")
            go = {"stage": first, "decision": "no-go", "reason": "candidate rejected by a gate"}
        else:
            decisions.append(
                {"decision": f"Start the rollout in {first}", "rationale": "artifacts exist and nothing is deployed"}
            )
            actions += [deploy_first, _evaluate(first, thr), _replay(state, first), _drill(first, "medium"), collect]
            go = {"stage": first, "decision": "go", "reason": "first stage; no gate precedes it"}
    else:
        stage, verdict, gates = cur["stage"], cur["verdict"], cur["gates"]
        failed = [g for g in gates if g["status"] == "fail"]
        waiting = ro.get("awaiting_approval")
        if verdict == "fail":
            names = ", ".join(f"{g['gate']}={fmt(g['value'])} (needs {g['threshold']})" for g in failed)
            decisions.append({"decision": f"Roll back {stage} and investigate", "rationale": f"gate failed: {names}"})
            actions += [
                _act(
                    f"Roll back the {stage} stage to its previous version.",
                    "rollback_officer",
                    "high",
                    "2min",
                    f"deployment/{stage} points at the previous version (or is empty)",
                ),
                _act(
                    f"Investigate the failed gate: run research/evaluate_model.py --model deployment/{stage}/versions/{cur['version']}/{_artifact_name(state)} --validation-set data/validation_set.",
                    "latency_analyst",
                    "high",
                    "3min",
                    "Metrics reproduced outside the rollout and the failing gate explained",
                ),
                collect,
                _act(
                    "Check that the essential files exist: research/v1_production.pth, runs/report/metrics.json, data/validation_set/dataset_info.json.",
                    "infra_guardian",
                    "low",
                    "1min",
                    "All essential files present",
                ),
            ]
            risks.append(f"{stage} is serving a version that failed {', '.join(g['gate'] for g in failed)}")
            go = {"stage": nxt or stage, "decision": "no-go", "reason": f"failed gate(s) at {stage}"}
        elif verdict == "inconclusive":
            missing = ", ".join(g["gate"] for g in gates if g["status"] == "inconclusive")
            decisions.append(
                {
                    "decision": f"Hold at {stage} until the gates have evidence",
                    "rationale": ro.get("reason") or f"inconclusive: {missing}",
                }
            )
            actions += _evidence_actions(state, stage, gates, thr) + [collect]
            go = {"stage": nxt or stage, "decision": "hold", "reason": f"inconclusive gate(s) at {stage}: {missing}"}
        elif nxt and waiting:
            decisions.append(
                {
                    "decision": f"Hold at {stage}: {nxt} needs a human approval",
                    "rationale": f"every gate of {stage} passed for {cur['version']}; the promotion waits for `{waiting['command']}`",
                }
            )
            actions += [
                _act(
                    "Report the rollout status and whether the promotion has been approved by a human.",
                    "compliance_monitor",
                    "high",
                    "1min",
                    f"Approval for {nxt} reported (given or still awaited)",
                ),
                _replay(state, stage, None, "medium"),
                collect,
            ]
            risks.append(f"Promotion to {nxt} is blocked until a human approves {cur['version']}")
            go = {"stage": nxt, "decision": "hold", "reason": f"awaiting human approval for {nxt}"}
        elif nxt:
            decisions.append(
                {
                    "decision": f"Promote from {stage} to {nxt}",
                    "rationale": f"every gate of {stage} passed for {cur['version']}",
                }
            )
            actions += [
                _act(
                    f"Promote the version live in {stage} (deployment/{stage}) to the {nxt} stage.",
                    "ops_commander",
                    "high",
                    "5min",
                    f"deployment/{nxt} live with the same sha256 as {stage}",
                ),
                _evaluate(nxt, thr),
                _replay(state, nxt),
                _drill(nxt, "medium"),
                collect,
            ]
            go = {"stage": nxt, "decision": "go", "reason": f"all gates of {stage} passed"}
        else:
            decisions.append(
                {
                    "decision": "Rollout complete: keep production under watch",
                    "rationale": "every gate of production passed",
                }
            )
            actions += [
                _evaluate("production", thr, "medium"),
                _replay(state, stage, None, "medium"),
                collect,
                _act(
                    "Check that the essential files exist: research/v1_production.pth, runs/report/metrics.json, data/validation_set/dataset_info.json.",
                    "infra_guardian",
                    "low",
                    "1min",
                    "All essential files present",
                ),
            ]
            go = {"stage": "production", "decision": "go", "reason": "rollout complete"}

    retries = [
        a
        for a in state["failed_actions"]
        if a.get("status") == "failed" and "nothing is deployed" not in (a.get("error") or "")
    ][:2]
    for a in retries:
        if all(a["action"] != b["action"] for b in actions):
            actions.append(
                _act(
                    a["action"],
                    a["owner"],
                    "medium",
                    a.get("estimated_duration", "5min"),
                    a.get("success_criteria", "Completes without error"),
                )
            )
            risks.append(f"Retrying a failed action: {a['action']} ({a.get('error', 'no detail')})")
    for a in state["last_execution"]["refused"][:3]:
        risks.append(f"Refused by the rollout controller: {a['action']} — {a.get('reason', '')}")
    for d in (ro.get("recent_decisions") or [])[-3:]:
        if d.get("kind") == "rollback" and d.get("outcome") == "rolled_back":
            risks.append(f"Automatic rollback by the rollout controller: {d.get('reason')}")
    cross = [cross_pollination(state)]
    return {"decisions": decisions, "go_no_go": go, "risks": risks, "cross_pollination": cross, "actions": actions}


def _artifact_name(state: dict) -> str:
    return (state["artifacts"]["model"] or "research/v1_production.pth").rsplit("/", 1)[-1]


def cross_pollination(state: dict) -> str:
    m = (state.get("current") or {}).get("metrics") or {}
    if m.get("latency_p95_ms") is not None and state["thresholds"].get("latency_p95_ms_max") is not None:
        head = state["thresholds"]["latency_p95_ms_max"] - m["latency_p95_ms"]
        return f"V1 → V2: P95 headroom is {head:.1f} ms; V2 re-ranking research may spend up to half of it."
    return "V1 → V2: no V1 measurements yet; V2 research priorities stay as they are until shadow metrics exist."
