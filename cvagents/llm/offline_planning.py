"""The offline provider's planning team: each role's contribution and the moderator's plan,
computed by rules from the state snapshot (``cvagents.state.snapshot``), in the role's voice.

Deterministic: the same snapshot always gives the same words.
"""
from __future__ import annotations

from typing import Any

STAGE_WORDS = {"shadow": "shadow", "5_percent": "5%", "20_percent": "20%", "50_percent": "50%", "production": "production"}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if v < 10 else f"{v:.2f}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return "—" if v is None else str(v)


def _bullets(items: list[str]) -> str:
    return "\n".join(f"- {i}" for i in items)


def _gates(state: dict) -> list[dict]:
    return (state.get("current") or {}).get("gates") or []


def _last_exec_line(state: dict) -> str:
    le = state["last_execution"]
    return f"{len(le['succeeded'])} succeeded, {len(le['failed'])} failed, {len(le['refused'])} refused"


# ------------------------------------------------------------------------------ the plan


def _act(action: str, owner: str, priority: str, duration: str, criteria: str) -> dict:
    return {"action": action, "owner": owner, "priority": priority, "estimated_duration": duration, "success_criteria": criteria}


def _evidence_actions(stage: str, gates: list[dict], thr: dict) -> list[dict]:
    missing = {g["gate"] for g in gates if g["status"] == "inconclusive"}
    out = []
    if missing & {"ndcg_at_10", "latency_p95_ms", "slo_compliance", "p0_incidents"}:
        out.append(_act(f"Evaluate the version live in {stage} (deployment/{stage}) on the validation set data/validation_set.", "latency_analyst", "high", "3min", f"NDCG@10 lower CI bound >= {thr['ndcg_at_10_min']}, latency P95 < {thr['latency_p95_ms_max']:g}ms"))
    if "rollback_test" in missing:
        out.append(_act(f"Run the rollback drill on the {stage} stage: roll back, check health, roll forward, verify the checksum.", "rollback_officer", "high", "2min", "Drill passes: previous version healthy, live checksum restored"))
    return out


def plan(state: dict) -> dict:
    """Decisions and actions for this state: sensible for every rollout state, never padded."""
    thr = state["thresholds"]
    art = state["artifacts"]
    cur = state.get("current")
    nxt = state.get("next_stage")
    decisions, risks, actions = [], [], []
    go = None
    collect = _act("Collect metrics into runs/report/metrics.json and report every deployed stage's gates.", "compliance_monitor", "medium", "2min", "metrics.json updated with history; each gate reported pass/fail/inconclusive")
    model = art["model"] or "research/v1_production.pth"

    if not art["model"] or not art["validation_set"]:
        decisions.append({"decision": "Create the V1.0 model artifacts before anything else", "rationale": "research/v1_production.pth or data/validation_set/ is missing; nothing can be deployed or evaluated without them"})
        actions += [
            _act("Create the V1 model artifacts: train research/v1_production.pth and write the validation set data/validation_set/.", "integration_engineer", "high", "2min", "research/v1_production.pth and data/validation_set/dataset_info.json exist"),
            _act("Check that the new artifacts exist: research/v1_production.pth, data/validation_set/dataset_info.json.", "infra_guardian", "high", "1min", "Both files present"),
            _act(f"Deploy V1.0 ({model}) to the shadow stage.", "ops_commander", "high", "5min", "Model deployed to deployment/shadow with a manifest whose sha256 matches"),
            _act("Evaluate the version live in shadow (deployment/shadow) on the validation set data/validation_set.", "latency_analyst", "high", "3min", f"NDCG@10 lower CI bound >= {thr['ndcg_at_10_min']}, latency P95 < {thr['latency_p95_ms_max']:g}ms"),
            _act("Run the rollback drill on the shadow stage: roll back, check health, roll forward, verify the checksum.", "rollback_officer", "medium", "2min", "Drill passes: stage restored with the same checksum"),
            collect,
        ]
        go = {"stage": "shadow", "decision": "hold", "reason": "no artifacts yet"}
    elif cur is None:
        if art["model_rejected"]:
            decisions.append({"decision": "Do not redeploy the current artifact", "rationale": "it failed a gate earlier; a new candidate is needed"})
            actions += [
                _act(f"Investigate the rejected candidate: run research/evaluate_model.py --model {model} --validation-set data/validation_set.", "latency_analyst", "high", "3min", "Per-metric report explains which gate failed"),
                _act("Check that the essential files exist: research/v1_production.pth, runs/report/metrics.json, data/validation_set/dataset_info.json.", "infra_guardian", "medium", "1min", "All essential files present"),
                collect,
            ]
            risks.append("The only candidate failed its gates; the rollout is stalled until a better model exists")
            go = {"stage": "shadow", "decision": "no-go", "reason": "candidate rejected by a gate"}
        else:
            decisions.append({"decision": "Start the rollout in shadow", "rationale": "artifacts exist and nothing is deployed"})
            actions += [
                _act(f"Deploy V1.0 ({model}) to the shadow stage.", "ops_commander", "high", "5min", "Model deployed to deployment/shadow with a manifest whose sha256 matches"),
                _act("Evaluate the version live in shadow (deployment/shadow) on the validation set data/validation_set.", "latency_analyst", "high", "3min", f"NDCG@10 lower CI bound >= {thr['ndcg_at_10_min']}, latency P95 < {thr['latency_p95_ms_max']:g}ms"),
                _act("Run the rollback drill on the shadow stage: roll back, check health, roll forward, verify the checksum.", "rollback_officer", "medium", "2min", "Drill passes: stage restored with the same checksum"),
                collect,
            ]
            go = {"stage": "shadow", "decision": "go", "reason": "first stage; no gate precedes it"}
    else:
        stage, verdict, gates = cur["stage"], cur["verdict"], cur["gates"]
        failed = [g for g in gates if g["status"] == "fail"]
        if verdict == "fail":
            names = ", ".join(f"{g['gate']}={_fmt(g['value'])} (needs {g['threshold']})" for g in failed)
            decisions.append({"decision": f"Roll back {stage} and investigate", "rationale": f"gate failed: {names}"})
            actions += [
                _act(f"Roll back the {stage} stage to its previous version.", "rollback_officer", "high", "2min", f"deployment/{stage} points at the previous version (or is empty)"),
                _act(f"Investigate the failed gate: run research/evaluate_model.py --model deployment/{stage}/versions/{cur['version']}/{_artifact_name(state)} --validation-set data/validation_set.", "latency_analyst", "high", "3min", "Metrics reproduced outside the rollout and the failing gate explained"),
                collect,
                _act("Check that the essential files exist: research/v1_production.pth, runs/report/metrics.json, data/validation_set/dataset_info.json.", "infra_guardian", "low", "1min", "All essential files present"),
            ]
            risks.append(f"{stage} is serving a version that failed {', '.join(g['gate'] for g in failed)}")
            go = {"stage": nxt or stage, "decision": "no-go", "reason": f"failed gate(s) at {stage}"}
        elif verdict == "inconclusive":
            missing = ", ".join(g["gate"] for g in gates if g["status"] == "inconclusive")
            decisions.append({"decision": f"Hold at {stage} until the gates have evidence", "rationale": f"inconclusive: {missing}"})
            actions += _evidence_actions(stage, gates, thr) + [collect]
            go = {"stage": nxt or stage, "decision": "hold", "reason": f"inconclusive gate(s) at {stage}: {missing}"}
        elif nxt:
            decisions.append({"decision": f"Promote from {stage} to {nxt}", "rationale": f"every gate of {stage} passed for {cur['version']}"})
            actions += [
                _act(f"Promote the version live in {stage} (deployment/{stage}) to the {nxt} stage.", "ops_commander", "high", "5min", f"deployment/{nxt} live with the same sha256 as {stage}"),
                _act(f"Evaluate the version live in {nxt} (deployment/{nxt}) on the validation set data/validation_set.", "latency_analyst", "high", "3min", f"NDCG@10 lower CI bound >= {thr['ndcg_at_10_min']}, latency P95 < {thr['latency_p95_ms_max']:g}ms"),
                _act(f"Run the rollback drill on the {nxt} stage: roll back, check health, roll forward, verify the checksum.", "rollback_officer", "medium", "2min", "Drill passes: stage restored with the same checksum"),
                collect,
            ]
            go = {"stage": nxt, "decision": "go", "reason": f"all gates of {stage} passed"}
        else:
            decisions.append({"decision": "Rollout complete: keep production under watch", "rationale": "every gate of production passed"})
            actions += [
                _act("Evaluate the version live in production (deployment/production) on the validation set data/validation_set.", "latency_analyst", "medium", "3min", "Gates still pass in production"),
                collect,
                _act("Check that the essential files exist: research/v1_production.pth, runs/report/metrics.json, data/validation_set/dataset_info.json.", "infra_guardian", "low", "1min", "All essential files present"),
            ]
            go = {"stage": "production", "decision": "go", "reason": "rollout complete"}

    retries = [a for a in state["failed_actions"] if a.get("status") == "failed"][:2]
    for a in retries:
        if all(a["action"] != b["action"] for b in actions):
            actions.append(_act(a["action"], a["owner"], "medium", a.get("estimated_duration", "5min"), a.get("success_criteria", "Completes without error")))
            risks.append(f"Retrying a failed action: {a['action']} ({a.get('error', 'no detail')})")
    for a in state["last_execution"]["refused"][:3]:
        risks.append(f"Refused by the rollout controller: {a['action']} — {a.get('reason', '')}")
    cross = [_cross_pollination(state)]
    return {"decisions": decisions, "go_no_go": go, "risks": risks, "cross_pollination": cross, "actions": actions}


def _artifact_name(state: dict) -> str:
    return (state["artifacts"]["model"] or "research/v1_production.pth").rsplit("/", 1)[-1]


def _cross_pollination(state: dict) -> str:
    m = (state.get("current") or {}).get("metrics") or {}
    if m.get("latency_p95_ms") is not None:
        head = state["thresholds"]["latency_p95_ms_max"] - m["latency_p95_ms"]
        return f"V1 → V2: P95 headroom is {head:.1f} ms; V2 re-ranking research may spend up to half of it."
    return "V1 → V2: no V1 measurements yet; V2 research priorities stay as they are until shadow metrics exist."


# ---------------------------------------------------------------------------- the voices


def _status_line(state: dict) -> str:
    cur = state.get("current")
    if not cur:
        return "nothing is deployed yet"
    return f"{cur['version']} is live in {cur['stage']} (gates: {cur['verdict']})"


def agenda(state: dict, meeting_id: str) -> str:
    """The moderator's opening: built from the state, the same for every provider."""
    lines = [f"Meeting {meeting_id} (planning meeting {state['meeting_number']}).", "", "Agenda:"]
    lines.append(f"1. Rollout stage: {_status_line(state)}.")
    lines.append(f"2. Last execution phase: {_last_exec_line(state)}.")
    for key in ("failed", "refused"):
        for a in state["last_execution"][key][:5]:
            lines.append(f"   - {key}: {a['action']} — {a.get('error') or a.get('reason') or ''}")
    gates = _gates(state)
    if gates:
        lines.append("3. Metrics against the gates:")
        lines += [f"   - {g['gate']}: {_fmt(g['value'])} (needs {g['threshold']}) → {g['status']}" for g in gates]
    else:
        lines.append("3. Metrics against the gates: no measurements for a live version yet.")
    lines.append(f"4. Open actions: {len(state['open_actions'])}; failed actions: {len(state['failed_actions'])}.")
    lines.append(f"5. Decide: go/no-go for {state.get('next_stage') or 'production watch'}, risks, V1 → V2 notes, and the next actions.")
    return "\n".join(lines)


def contribution(role: str, state: dict) -> str:
    fn = VOICES.get(role, _generic)
    body, recs = fn(state)
    return f"(offline provider, rule-based: no LLM was called)\n\n{body}\n\nRecommended actions:\n{_bullets(recs)}"


def _pre_architect(state: dict):
    rows = []
    for stage in state["stages_order"]:
        s = state["stages"].get(stage)
        rows.append(f"- {stage}: {s['version'] + ' (sha256 ' + s['sha256'][:12] + ')' if s else 'empty'}")
    body = "Deployment topology as it stands:\n" + "\n".join(rows)
    body += "\nEach stage holds versioned copies and an atomic pointer; a rollback is a pointer swap."
    cur = state.get("current")
    if not state["artifacts"]["model"]:
        recs = ["Create the V1 artifacts before any deployment is planned."]
    elif not cur:
        recs = ["Deploy V1.0 to the shadow stage first; no stage may be skipped."]
    else:
        recs = [f"Keep {cur['stage']} as the only stage that changes this cycle."]
    return body, recs


def _data_analyst(state: dict):
    gates = _gates(state)
    if not gates:
        return "No metrics exist for a live version, so no gate can be judged: every gate is inconclusive.", [
            "Evaluate the live version on data/validation_set before any decision."
        ]
    lines = [f"| {g['gate']} | {_fmt(g['value'])} | {g['threshold']} | {g['status']} |" for g in gates]
    body = "Metrics against the thresholds:\n\n| gate | value | threshold | status |\n|---|---|---|---|\n" + "\n".join(lines)
    bad = [g["gate"] for g in gates if g["status"] != "pass"]
    recs = [f"Resolve {', '.join(bad)} before promotion."] if bad else ["All gates pass: the data supports promotion."]
    return body, recs


def _tech_analysis(state: dict):
    m = (state.get("current") or {}).get("metrics")
    if not m:
        return "No latency or ranking measurements yet; the technical risk is unknown, not low.", ["Measure latency P50/P95/P99 and NDCG@10 with its confidence interval."]
    ci = m.get("ndcg_at_10_ci95") or [None, None]
    body = (
        f"Ranking: NDCG@10 {_fmt(m.get('ndcg_at_10'))}, 95% CI {_fmt(ci)}, recall@10 {_fmt(m.get('recall_at_10'))}, MRR {_fmt(m.get('mrr'))}.\n"
        f"Latency per query: P50 {_fmt(m.get('latency_p50_ms'))} ms, P95 {_fmt(m.get('latency_p95_ms'))} ms, P99 {_fmt(m.get('latency_p99_ms'))} ms."
    )
    recs = ["Keep the P95 measurement per version so regressions are visible."]
    if ci[0] is not None and ci[1] is not None and ci[1] - ci[0] > 0.05:
        recs.append("The NDCG interval is wide; gather more queries before relying on it.")
    return body, recs


def _critic(state: dict):
    cur = state.get("current")
    failed_gates = [g for g in _gates(state) if g["status"] == "fail"]
    le = state["last_execution"]
    if failed_gates:
        g = failed_gates[0]
        item = f"the {cur['stage']} stage serves a version that FAILS {g['gate']} ({_fmt(g['value'])} vs {g['threshold']})"
        rec = f"Roll back {cur['stage']} now; do not promote."
    elif le["refused"]:
        a = le["refused"][0]
        item = f"an action was refused by the rollout controller: {a['action']} ({a.get('reason', '')})"
        rec = "Plan only steps that the gates allow."
    elif state["failed_actions"]:
        a = state["failed_actions"][0]
        item = f"a failed action is still open: {a['action']} ({a.get('error', 'no detail')})"
        rec = "Fix or retry the failed action before building on it."
    elif cur and cur["verdict"] == "inconclusive":
        missing = [g["gate"] for g in cur["gates"] if g["status"] == "inconclusive"]
        item = f"{cur['stage']} has unproven gates ({', '.join(missing)}); silence is not a pass"
        rec = "Gather the missing evidence before any go decision."
    elif not cur:
        item = "nothing is deployed, so every claim about this model is untested"
        rec = "Get the model into shadow and measure it."
    else:
        item = f"the rollback path of {cur['stage']} has only been drilled, never exercised under load"
        rec = "Keep the rollback drill before every promotion."
    return f"The riskiest open item: {item}.", [rec]


def _cotrr_team(state: dict):
    m = (state.get("current") or {}).get("metrics")
    if not m or m.get("latency_p95_ms") is None:
        return "Nothing to optimise until latency is measured.", ["Measure latency first; optimisation follows measurement."]
    head = state["thresholds"]["latency_p95_ms_max"] - m["latency_p95_ms"]
    body = f"Latency headroom against the P95 objective: {head:.1f} ms. A lightweight CoTRR re-ranker over the top-10 fits if it costs under {head / 2:.1f} ms per query."
    return body, [_cross_pollination(state)]


def _generic(state: dict):
    return f"State: {_status_line(state)}.", ["Follow the moderator's plan."]


VOICES = {
    "pre_architect": _pre_architect,
    "data_analyst": _data_analyst,
    "tech_analysis": _tech_analysis,
    "critic": _critic,
    "cotrr_team": _cotrr_team,
}
