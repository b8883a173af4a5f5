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


def _evaluate(stage: str, thr: dict, priority: str = "high", who: str = "") -> dict:
    return _act(
        f"Evaluate the version live in {stage} (deployment/{stage}){who} on the validation set data/validation_set.",
        "latency_analyst",
        priority,
        "3min",
        _criteria(thr),
    )


def _replay(state: dict, stage: str, evidence: dict | None = None, priority: str = "high", who: str = "") -> dict:
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
        text = f"Replay {m} minutes of live traffic mirrored to the {stage} stage{who} (compared, never served) and record latency, errors, SLO compliance and P0 incidents."
    else:
        text = f"Replay {m} minutes of live traffic through the {STAGE_WORDS.get(stage, stage)} router of the {stage} stage{who} and record latency, errors, SLO compliance and P0 incidents."
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
        "Rollback drill passes: previous version healthy, live checksum restored",
    )


def _collect(priority: str = "low") -> dict:
    """Reporting only: the run merges the metrics after every heartbeat, so it goes last."""
    return _act(
        "Collect metrics into runs/report/metrics.json and report every deployed stage's gates.",
        "compliance_monitor",
        priority,
        "2min",
        "metrics.json updated with history; each gate reported pass/fail/inconclusive",
    )


def _gather(state: dict, stage: str, thr: dict, missing: set[str], evidence: dict | None, who: str) -> list[dict]:
    """The evidence ``stage`` still lacks, in ONE execution phase: the quick steps (evaluation,
    drill) first and the long traffic replay last, so the first heartbeat after a meeting stays
    short and the replay's heartbeat starts well before the next meeting is due."""
    out = []
    if "evaluation" in missing:
        out.append(_evaluate(stage, thr, who=who))
    if "drill" in missing:
        out.append(_drill(stage))
    if "traffic" in missing:
        out.append(_replay(state, stage, evidence, who=who))
    return out


ALL_EVIDENCE = {"evaluation", "drill", "traffic"}

# ------------------------------------------------------------------------------ the models


def _models(state: dict) -> tuple[dict | None, dict | None, dict | None]:
    """(champion, active candidate, newest candidate) from the snapshot's ``models``."""
    m = state.get("models") or {}
    cands = m.get("candidates") or []
    return m.get("champion"), m.get("active"), (cands[-1] if cands else None)


def _who(state: dict) -> str:
    """Names the candidate an action is about and the champion it is judged against; never a
    stage name (the executive reads stages from an action's words)."""
    champ, active, _ = _models(state)
    if not active:
        return ""
    vs = f", judged against champion {champ['name']}" if champ and champ["name"] != active["name"] else ""
    return f" (candidate {active['name']}{vs})"


def _rejected_report(state: dict) -> tuple[list[dict], list[str], dict | None]:
    """A rejected newest candidate: reported (what, where, why) and left alone — no redeploy,
    no investigation loop: a better model is a new submission."""
    art = state["artifacts"]
    if not art.get("model_rejected"):
        return [], [], None
    _, _, newest = _models(state)
    rejected = (state.get("rollout") or {}).get("rejected") or {}
    if newest:
        name, sha = newest["name"], newest["sha256"][:12]
        why = newest.get("rejected_reason") or rejected.get(sha) or "it failed a gate earlier"
    else:
        name, why = art.get("model") or "the candidate", rejected.get((art.get("model_sha256") or "")[:12])
        why = why or "it failed a gate earlier"
    first = (state.get("stages_order") or ["shadow"])[0]
    decision = {
        "decision": f"Candidate {name} stays rejected: do not redeploy it",
        "rationale": f"the rollout controller threw it back ({why}); only a new submission can replace it",
    }
    risk = f"Candidate {name} was rejected by a gate ({why}); it is never deployed again"
    go = {"stage": first, "decision": "no-go", "reason": f"candidate {name} rejected by a gate"}
    return [decision], [risk], go


# ------------------------------------------------------------------------------ the plan


def _no_artifacts(state: dict, thr: dict) -> tuple[list[dict], list[dict], dict]:
    first = (state.get("stages_order") or ["shadow"])[0]
    decisions = [
        {
            "decision": "Create the V1.0 model artifacts before anything else",
            "rationale": "research/v1_production.pth or data/validation_set/ is missing; nothing can be deployed or evaluated without them",
        }
    ]
    actions = [
        _act(
            "Create the V1 model artifacts: train research/v1_production.pth and write the validation set data/validation_set/.",
            "integration_engineer",
            "high",
            "2min",
            "research/v1_production.pth and data/validation_set/dataset_info.json exist and the tool reports the model's sha256",
        ),
        _deploy_first(state, "research/v1_production.pth", "V1.0"),
        *_gather(state, first, thr, ALL_EVIDENCE, None, ""),
        _collect(),
    ]
    return decisions, actions, {"stage": first, "decision": "hold", "reason": "no artifacts yet"}


def _deploy_first(state: dict, path: str, label: str) -> dict:
    first = (state.get("stages_order") or ["shadow"])[0]
    return _act(
        f"Deploy {label} ({path}) to the {first} stage.",
        "ops_commander",
        "high",
        "5min",
        f"Model deployed to deployment/{first} with a manifest whose sha256 matches",
    )


def _start(state: dict, thr: dict) -> tuple[list[dict], list[dict], dict]:
    """Nothing of the active candidate is live: its rollout starts at the first stage."""
    champ, active, _ = _models(state)
    first = (state.get("stages_order") or ["shadow"])[0]
    model = state["artifacts"]["model"] or "research/v1_production.pth"
    if active and champ:
        label = f"candidate {active['name']}"
        why = f"candidate {active['name']} ({active['path']}) is waiting; it is judged against champion {champ['name']} in production"
    elif active:
        label, why = f"candidate {active['name']}", "artifacts exist and nothing is deployed"
    else:
        label, why = "V1.0", "artifacts exist and nothing is deployed"
    decisions = [{"decision": f"Start the rollout of {label} in {first}", "rationale": why}]
    actions = [
        _deploy_first(state, model, label),
        *_gather(state, first, thr, ALL_EVIDENCE, None, _who(state)),
        _collect(),
    ]
    return decisions, actions, {"stage": first, "decision": "go", "reason": "first stage; no gate precedes it"}


def _watch(state: dict, thr: dict) -> list[dict]:
    """Production under watch: a fresh evaluation and a short replay (its evidence is already
    sufficient, so the default minutes), at a lower priority."""
    last = (state.get("stages_order") or ["production"])[-1]
    evidence = (state.get("current") or {}).get("evidence")
    return [_evaluate(last, thr, "medium"), _replay(state, last, evidence, "low"), _collect()]


def _on_stage(state: dict, thr: dict) -> tuple[list[dict], list[dict], list[str], dict]:
    cur, nxt, ro = state["current"], state.get("next_stage"), state.get("rollout") or {}
    stage, verdict, gates = cur["stage"], cur["verdict"], cur["gates"]
    who = _who(state)
    decisions: list[dict] = []
    risks: list[str] = []
    if verdict == "fail":
        failed = [g for g in gates if g["status"] == "fail"]
        names = ", ".join(f"{g['gate']}={fmt(g['value'])} (needs {g['threshold']})" for g in failed)
        decisions.append({"decision": f"Roll back {stage} and investigate", "rationale": f"gate failed: {names}"})
        actions = [
            _act(
                f"Roll back the {stage} stage to its previous version.",
                "rollback_officer",
                "high",
                "2min",
                f"deployment/{stage} manifest points at the previous version (or the stage is empty)",
            ),
            _act(
                f"Investigate the failed gate: run research/evaluate_model.py --model deployment/{stage}/versions/{cur['version']}/{_artifact_name(state)} --validation-set data/validation_set.",
                "latency_analyst",
                "high",
                "3min",
                "Metrics reproduced outside the rollout and the failing gate explained",
            ),
            _collect("medium"),
        ]
        risks.append(f"{stage} is serving a version that failed {', '.join(g['gate'] for g in failed)}")
        return (
            decisions,
            actions,
            risks,
            {"stage": nxt or stage, "decision": "no-go", "reason": f"failed gate(s) at {stage}"},
        )
    if verdict == "inconclusive":
        missing = ", ".join(g["gate"] for g in gates if g["status"] == "inconclusive")
        decisions.append(
            {
                "decision": f"Hold at {stage} until the gates have evidence",
                "rationale": ro.get("reason") or f"inconclusive: {missing}",
            }
        )
        lacking = {_source(g) for g in gates if g["status"] == "inconclusive"}
        actions = _gather(state, stage, thr, lacking, cur.get("evidence"), who) + [_collect()]
        go = {"stage": nxt or stage, "decision": "hold", "reason": f"inconclusive gate(s) at {stage}: {missing}"}
        return decisions, actions, risks, go
    waiting = ro.get("awaiting_approval")
    if nxt and waiting:
        decisions.append(
            {
                "decision": f"Hold at {stage}: {nxt} needs a human approval",
                "rationale": f"every gate of {stage} passed for {cur['version']}; the promotion waits for `{waiting['command']}`",
            }
        )
        actions = [
            _act(
                "Report the rollout status and whether the promotion has been approved by a human.",
                "compliance_monitor",
                "high",
                "1min",
                f"Approval for {nxt} reported (given or still awaited)",
            ),
            _replay(state, stage, cur.get("evidence"), "medium", who),
            _collect(),
        ]
        risks.append(f"Promotion to {nxt} is blocked until a human approves {cur['version']}")
        return (
            decisions,
            actions,
            risks,
            {"stage": nxt, "decision": "hold", "reason": f"awaiting human approval for {nxt}"},
        )
    if nxt:
        decisions.append(
            {
                "decision": f"Promote from {stage} to {nxt}",
                "rationale": f"every gate of {stage} passed for {cur['version']}",
            }
        )
        actions = [
            _act(
                f"Promote the version live in {stage} (deployment/{stage}){who} to the {nxt} stage.",
                "ops_commander",
                "high",
                "5min",
                f"deployment/{nxt} live with the same sha256 as {stage}",
            ),
            *_gather(state, nxt, thr, ALL_EVIDENCE, None, who),
            _collect(),
        ]
        return decisions, actions, risks, {"stage": nxt, "decision": "go", "reason": f"all gates of {stage} passed"}
    champ, _, _ = _models(state)
    decisions.append(
        {
            "decision": f"Keep production under watch{' (champion ' + champ['name'] + ')' if champ else ''}",
            "rationale": "every gate of production passed; no candidate is waiting",
        }
    )
    return decisions, _watch(state, thr), risks, {"stage": stage, "decision": "go", "reason": "rollout complete"}


def plan(state: dict) -> dict:
    """Decisions and actions for this state: sensible for every lifecycle state, never padded."""
    thr = state["thresholds"]
    art = state["artifacts"]
    cur = state.get("current")
    champ, active, _ = _models(state)
    has_candidates = bool((state.get("models") or {}).get("candidates"))
    decisions: list[dict] = []
    risks: list[str] = []
    actions: list[dict] = []
    go: dict | None
    rj_decisions, rj_risks, rj_go = _rejected_report(state) if not active else ([], [], None)
    if not art["validation_set"] or not (art["model"] or has_candidates):
        decisions, actions, go = _no_artifacts(state, thr)
    elif cur is None and (active or not art["model_rejected"]):
        decisions, actions, go = _start(state, thr)
    elif cur is None:  # the only candidates were thrown back and no champion serves: wait for a new one
        actions, go = [_collect("medium")], rj_go
    else:
        decisions, actions, risks, go = _on_stage(state, thr)
        if rj_go and go and go["decision"] == "go" and not active:
            go = rj_go
    decisions = rj_decisions + decisions
    risks = rj_risks + risks

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
    for d in ((state.get("rollout") or {}).get("recent_decisions") or [])[-3:]:
        if d.get("kind") == "rollback":
            risks.append(f"Automatic rollback by the rollout controller: {d.get('reason')}")
    cross = [cross_pollination(state)]
    return {"decisions": decisions, "go_no_go": go, "risks": risks, "cross_pollination": cross, "actions": actions}


def _artifact_name(state: dict) -> str:
    """The file name of the version live in the current stage: the model whose sha256 it has (a
    champion watched while no candidate is active is not the guide's model file), else the
    artifact the snapshot names."""
    sha = (state.get("current") or {}).get("sha256") or ""
    models = state.get("models") or {}
    known = [models.get("champion"), models.get("active"), *(models.get("candidates") or [])]
    live = next((m["path"] for m in known if m and m.get("sha256") and sha.startswith(m["sha256"])), None)
    return (live or state["artifacts"]["model"] or "research/v1_production.pth").rsplit("/", 1)[-1]


def cross_pollination(state: dict) -> str:
    champ, active, _ = _models(state)
    if champ and active and not state.get("current"):
        return f"V1 → V2: candidate {active['name']} is judged against champion {champ['name']} on the same validation set and the same replayed traffic."
    m = (state.get("current") or {}).get("metrics") or {}
    if m.get("latency_p95_ms") is not None and state["thresholds"].get("latency_p95_ms_max") is not None:
        head = state["thresholds"]["latency_p95_ms_max"] - m["latency_p95_ms"]
        return f"V1 → V2: P95 headroom is {head:.1f} ms; V2 re-ranking research may spend up to half of it."
    return "V1 → V2: no V1 measurements yet; V2 research priorities stay as they are until shadow metrics exist."
