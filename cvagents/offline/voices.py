"""The offline planning team's voices: the moderator's agenda and each role's contribution,
computed by rules from the state snapshot, in the role's voice. Deterministic: the same
snapshot always gives the same words.
"""

from __future__ import annotations

from collections.abc import Callable

from cvagents.offline.planning import cross_pollination, fmt, gates_of

Voice = Callable[[dict], tuple[str, list[str]]]


def _bullets(items: list[str]) -> str:
    return "\n".join(f"- {i}" for i in items)


def _last_exec_line(state: dict) -> str:
    le = state["last_execution"]
    n = f"{len(le['succeeded'])} succeeded, {len(le['failed'])} failed, {len(le['refused'])} refused"
    return n + (f", {len(le['unverified'])} unverified (no tool called)" if le.get("unverified") else "")


def _status_line(state: dict) -> str:
    cur = state.get("current")
    active = (state.get("models") or {}).get("active")
    if not cur:
        return f"candidate {active['name']} is not deployed yet" if active else "nothing is deployed yet"
    who = f"candidate {active['name']} ({cur['version']})" if active else cur["version"]
    return f"{who} is live in {cur['stage']} (gates: {cur['verdict']})"


def _model_lines(state: dict) -> list[str]:
    """The champion in production and every candidate that is not it, with its status."""
    m = state.get("models") or {}
    champ = m.get("champion")
    lines = [
        f"   - champion in production: {champ['name']} ({champ['path']}, sha256 {champ['sha256']})"
        if champ
        else "   - champion in production: none yet"
    ]
    for c in m.get("candidates") or []:
        if champ and c["name"] == champ["name"]:
            continue
        where = f" at {c['stage']}" if c.get("stage") else ""
        why = f": {c['rejected_reason']}" if c.get("rejected_reason") else ""
        lines.append(f"   - candidate {c['name']} ({c['path']}, sha256 {c['sha256']}): {c['status']}{where}{why}")
    return lines


def agenda(state: dict, meeting_id: str) -> str:
    """The moderator's opening: built from the state, the same for every provider."""
    lines = [f"Meeting {meeting_id} (planning meeting {state['meeting_number']}).", "", "Agenda:"]
    lines.append(f"1. Rollout stage: {_status_line(state)}.")
    if state.get("models"):
        lines += _model_lines(state)
    ro = state.get("rollout") or {}
    if ro.get("awaiting_approval"):
        w = ro["awaiting_approval"]
        lines.append(f"   - awaiting human approval for {w['stage']}: `{w['command']}`")
    elif ro.get("reason"):
        lines.append(f"   - rollout controller: {ro['reason']}")
    for d in (ro.get("recent_decisions") or [])[-3:]:
        if d.get("kind") == "rollback":
            lines.append(f"   - rollout controller decision ({d.get('time')}): {d.get('reason')}")
    lines.append(f"2. Last execution phase: {_last_exec_line(state)}.")
    for key in ("failed", "refused", "unverified"):
        for a in state["last_execution"].get(key, [])[:5]:
            said = f" ({a['claim']})" if key == "unverified" and a.get("claim") else ""
            lines.append(f"   - {key}: {a['action']} — {a.get('error') or a.get('reason') or ''}{said}")
    gates = gates_of(state)
    if gates:
        lines.append("3. Metrics against the gates:")
        lines += [f"   - {g['gate']}: {fmt(g['value'])} (needs {g['threshold']}) → {g['status']}" for g in gates]
    else:
        lines.append("3. Metrics against the gates: no measurements for a live version yet.")
    n_open = state.get("open_actions_count", len(state["open_actions"]))  # the snapshot lists the next few
    lines.append(f"4. Open actions: {n_open}; failed actions: {len(state['failed_actions'])}.")
    lines.append(
        f"5. Decide: go/no-go for {state.get('next_stage') or 'production watch'}, risks, V1 → V2 notes, and the next actions."
    )
    return "\n".join(lines)


def contribution(role: str, state: dict) -> str:
    fn = VOICES.get(role, _generic)
    body, recs = fn(state)
    return f"(offline provider, rule-based: no LLM was called)\n\n{body}\n\nRecommended actions:\n{_bullets(recs)}"


def _pre_architect(state: dict) -> tuple[str, list[str]]:
    rows = []
    for stage in state["stages_order"]:
        s = state["stages"].get(stage)
        rows.append(f"- {stage}: {s['version'] + ' (sha256 ' + s['sha256'][:12] + ')' if s else 'empty'}")
    body = "Deployment topology as it stands:\n" + "\n".join(rows)
    body += "\nEach stage holds versioned copies and an atomic pointer; a rollback is a pointer swap."
    cur = state.get("current")
    active = (state.get("models") or {}).get("active")
    first = state["stages_order"][0]
    if not state["artifacts"]["model"]:
        recs = ["Create the V1 artifacts before any deployment is planned."]
    elif not cur and active:
        recs = [f"Deploy candidate {active['name']} to the {first} stage first; no stage may be skipped."]
    elif not cur:
        recs = [f"Deploy V1.0 to the {first} stage first; no stage may be skipped."]
    else:
        recs = [f"Keep {cur['stage']} as the only stage that changes this cycle."]
    return body, recs


def _data_analyst(state: dict) -> tuple[str, list[str]]:
    gates = gates_of(state)
    if not gates:
        return "No metrics exist for a live version, so no gate can be judged: every gate is inconclusive.", [
            "Evaluate the live version on data/validation_set before any decision."
        ]
    lines = [f"| {g['gate']} | {fmt(g['value'])} | {g['threshold']} | {g['status']} |" for g in gates]
    body = "Metrics against the thresholds:\n\n| gate | value | threshold | status |\n|---|---|---|---|\n" + "\n".join(
        lines
    )
    bad = [g["gate"] for g in gates if g["status"] != "pass"]
    recs = [f"Resolve {', '.join(bad)} before promotion."] if bad else ["All gates pass: the data supports promotion."]
    return body, recs


def _tech_analysis(state: dict) -> tuple[str, list[str]]:
    m = (state.get("current") or {}).get("metrics")
    if not m:
        return "No latency or ranking measurements yet; the technical risk is unknown, not low.", [
            "Measure latency P50/P95/P99 and NDCG@10 with its confidence interval."
        ]
    ci = m.get("ndcg_at_10_ci95") or [None, None]
    body = (
        f"Ranking: NDCG@10 {fmt(m.get('ndcg_at_10'))}, 95% CI {fmt(ci)}, recall@10 {fmt(m.get('recall_at_10'))}, MRR {fmt(m.get('mrr'))}.\n"
        f"Latency per query: P50 {fmt(m.get('latency_p50_ms'))} ms, P95 {fmt(m.get('latency_p95_ms'))} ms, P99 {fmt(m.get('latency_p99_ms'))} ms."
    )
    recs = ["Keep the P95 measurement per version so regressions are visible."]
    if ci[0] is not None and ci[1] is not None and ci[1] - ci[0] > 0.05:
        recs.append("The NDCG interval is wide; gather more queries before relying on it.")
    return body, recs


def _critic(state: dict) -> tuple[str, list[str]]:
    cur: dict = state.get("current") or {}
    failed_gates = [g for g in gates_of(state) if g["status"] == "fail"]
    le = state["last_execution"]
    if failed_gates:
        g = failed_gates[0]
        item = (
            f"the {cur['stage']} stage serves a version that FAILS {g['gate']} ({fmt(g['value'])} vs {g['threshold']})"
        )
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
    elif state["artifacts"].get("model_rejected") and not (state.get("models") or {}).get("active"):
        item = "the newest candidate was thrown back by a gate; redeploying it would only fail again"
        rec = "Leave the rejected candidate alone; wait for a new submission."
    else:
        item = f"the rollback path of {cur['stage']} has only been drilled, never exercised under load"
        rec = "Keep the rollback drill before every promotion."
    return f"The riskiest open item: {item}.", [rec]


def _cotrr_team(state: dict) -> tuple[str, list[str]]:
    m = (state.get("current") or {}).get("metrics")
    if not m or m.get("latency_p95_ms") is None or state["thresholds"].get("latency_p95_ms_max") is None:
        return "Nothing to optimise until latency is measured.", [
            "Measure latency first; optimisation follows measurement."
        ]
    head = state["thresholds"]["latency_p95_ms_max"] - m["latency_p95_ms"]
    body = f"Latency headroom against the P95 objective: {head:.1f} ms. A lightweight CoTRR re-ranker over the top-10 fits if it costs under {head / 2:.1f} ms per query."
    return body, [cross_pollination(state)]


def _generic(state: dict) -> tuple[str, list[str]]:
    return f"State: {_status_line(state)}.", ["Follow the moderator's plan."]


VOICES: dict[str, Voice] = {
    "pre_architect": _pre_architect,
    "data_analyst": _data_analyst,
    "tech_analysis": _tech_analysis,
    "critic": _critic,
    "cotrr_team": _cotrr_team,
}
