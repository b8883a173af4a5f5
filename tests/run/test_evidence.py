"""Outcomes from evidence, not from words (issue 14), through a whole run: meeting → heartbeats
→ the next meeting's state and prompt. The scripted team behaves as a small local model did:
it answers "RESULT: succeeded" without calling a tool, follows a failed evaluation with an
unrelated tool, mistypes a stage and corrects it, writes a tool call as JSON text (one agent
strict, one lenient) and invents numbers."""

from __future__ import annotations

import json

import pytest
from fakes import ScriptedProvider, synthesis_json
from resume_helpers import Crash, coordinator, records, seed

from cvagents.config import Settings
from cvagents.execution.executive import CLAIM_LABEL
from cvagents.rollout import decisions
from cvagents.ui.status import collect_status, format_status
from cvagents.workspace import Workspace

MODEL = "research/v1_production.pth"
PLAN = [  # (action, owner): all high priority, carried out in this order, three per heartbeat
    ("Deploy research/v1_production.pth to 20_percent.", "ops_commander"),
    ("Re-evaluate research/missing.pth on the validation set.", "latency_analyst"),
    ("Deploy research/v1_production.pth to shadow.", "infra_guardian"),
    ("Check that the model file is in place.", "compliance_monitor"),
    ("Check that the model file is in place (lenient).", "integration_engineer"),
    ("Report the shadow metrics.", "rollback_officer"),
]
CALL_AS_TEXT = '```json\n{"name": "check_files", "arguments": {"paths": ["research/v1_production.pth"]}}\n```'
INVENTED = "RESULT: succeeded — shadow evaluated: NDCG@10 0.741, CI lower bound 0.728; P95 38.2 ms"


def _provider() -> ScriptedProvider:
    actions = [
        {
            "action": a,
            "owner": o,
            "priority": "high",
            "estimated_duration": "5min",
            "success_criteria": "the tool reports the stage and its gate verdict",
        }
        for a, o in PLAN
    ]
    p = ScriptedProvider.as_offline().always(
        synthesis_json(actions, [{"decision": "Proceed", "rationale": "scripted"}]), purpose="synthesis"
    )
    deploy = lambda stage: [("deploy_model", {"model_path": MODEL, "stage": stage})]  # noqa: E731
    script = {
        "ops_commander": ["RESULT: succeeded — the model has been deployed to 20_percent"],
        "latency_analyst": [
            [("run_evaluation", {"model_path": "research/missing.pth"})],
            [("create_v1_artifacts", {})],
            "RESULT: succeeded — re-evaluated",
        ],
        "infra_guardian": [deploy("Shadow"), deploy("shadow"), "RESULT: succeeded — deployed to shadow"],
        "compliance_monitor": [CALL_AS_TEXT],
        "integration_engineer": [CALL_AS_TEXT, "RESULT: succeeded — the model file is there"],
        "rollback_officer": [INVENTED],
    }
    for agent, replies in script.items():
        p.enqueue(replies, agent=agent, purpose="action")
    return p


def _settings(config_copy) -> Settings:
    """The shipped configs, with integration_engineer on lenient tool-call parsing."""
    meeting = config_copy / "configs" / "meeting.yaml"
    text = meeting.read_text()
    anchor = "prompt: prompts/executive_team/integration_engineer.md\n"
    assert anchor in text
    meeting.write_text(text.replace(anchor, anchor + "    tool_call_parsing: lenient\n"))
    return Settings(config_copy)


def _run(ws, s: Settings, provider: ScriptedProvider) -> dict:
    c = coordinator(ws, 2, s=s, provider=provider)
    try:
        return c.run()
    finally:
        c.close()


@pytest.fixture
def evidence_run(tmp_path, config_copy):
    ws = seed(tmp_path / "ws")
    provider = _provider()
    assert _run(ws, _settings(config_copy), provider)["status"] == "finished"
    recs = records(ws)
    first = next(r.data["meeting_id"] for r in recs if r.kind == "meeting_started")
    finished = {
        int(r.data["action_id"].split("#")[1]): r.data
        for r in recs
        if r.kind == "action_finished" and r.data["action_id"].startswith(first + "#")
    }
    assert sorted(finished) == [1, 2, 3, 4, 5, 6]
    return ws, provider, recs, first, finished


def test_each_action_is_recorded_by_what_its_tools_did(evidence_run):
    ws, provider, recs, first, fin = evidence_run
    status = {i: f["status"] for i, f in fin.items()}
    assert status == {
        1: "unverified",  # "RESULT: succeeded — deployed to 20_percent" with no tool call
        2: "failed",  # run_evaluation failed; an unrelated tool's success does not make it good
        3: "succeeded",  # stage "Shadow" fed back as the tool's error, then called right
        4: "unverified",  # strict: the call written as text is detected, not run
        5: "succeeded",  # lenient: the call written as text is checked and run
        6: "unverified",  # invented numbers, no tool
    }
    assert fin[1]["error"] == "no tool was called" and not fin[1]["outcomes"]
    assert fin[1]["claim"] == CLAIM_LABEL + "RESULT: succeeded — the model has been deployed to 20_percent"
    assert fin[2]["error"] == "model artifact research/missing.pth not found"
    assert [(o["tool"], o["status"]) for o in fin[2]["outcomes"]] == [
        ("run_evaluation", "failed"),
        ("create_v1_artifacts", "succeeded"),
    ]
    shadow, fixed = fin[3]["outcomes"]
    assert shadow["status"] == "failed" and shadow["result"]["error"] == (
        "argument stage: 'Shadow' is not allowed; expected one of shadow, 5_percent, 20_percent, 50_percent, production"
    )
    assert fixed["status"] == "succeeded" and fixed["arguments"]["stage"] == "shadow"
    # the mistyped stage went back to the model as the tool's error, and it corrected itself
    corrected = [r for r in provider.requests_for("infra_guardian", "action") if first in r.context["action_id"]][1]
    assert corrected.messages[-1].is_error and "'Shadow' is not allowed" in corrected.messages[-1].content
    # strict: detected and said, never run
    assert fin[4]["text_tool_calls"] == ["check_files"] and not fin[4]["outcomes"]
    assert fin[4]["error"] == "wrote a tool call as text instead of calling the tool: check_files"
    # lenient: run through the registry and recorded as recovered from text
    assert fin[5]["text_tool_calls"] == ["check_files"]
    assert [(o["tool"], o["status"], o.get("recovered_from_text")) for o in fin[5]["outcomes"]] == [
        ("check_files", "succeeded", True)
    ]
    calls = [r.data for r in recs if r.kind == "tool_call" and r.data["action_id"] in (f"{first}#4", f"{first}#5")]
    assert [(c["action_id"].split("#")[1], c["tool"], c.get("recovered_from_text")) for c in calls] == [
        ("5", "check_files", True)
    ]

    # no refusal anywhere: the controller refused nothing; 20_percent is still empty
    made = decisions.read(Workspace.open(ws))
    made = [d for d in made if str(d.get("action_id")).startswith(first + "#")]
    assert made and not [d for d in made if d["outcome"] == "refused" or d["kind"] == "refused"]
    assert [(d["stage"], d["action_id"]) for d in made if d["outcome"] == "deployed"] == [("shadow", f"{first}#3")]
    assert not list((ws / "deployment" / "20_percent").glob("versions/*"))

    # the execution report and status say unverified, never succeeded
    execs = [
        e
        for p in sorted((ws / "reports" / "execution").glob("execution_*.json"))
        for e in json.loads(p.read_text())["executions"]
    ]
    mine = {e["action_id"]: e for e in execs if e["action_id"] in (f"{first}#1", f"{first}#6")}
    assert {e["status"] for e in mine.values()} == {"unverified"} and {e["tool"] for e in mine.values()} == {None}
    s = collect_status(ws)
    assert s["actions"]["unverified"] >= 3 and s["actions"]["unverified"] == sum(
        r.data["status"] == "unverified" for r in recs if r.kind == "action_finished"
    )
    assert f"{s['actions']['unverified']} unverified" in format_status(s)


def test_executive_log_tells_each_action_with_its_evidence(evidence_run):
    ws, _, _, first, _ = evidence_run
    log = (ws / "executive.log").read_text(encoding="utf-8")
    lines = log.splitlines()

    def line(needle: str) -> str:
        found = [x for x in lines if needle in x]
        assert len(found) == 1, (needle, found)
        return found[0]

    assert line(f"[ACTION] {first}#1 unverified").endswith(
        'no tool was called; agent said "RESULT: succeeded — the model has been deployed to 20_percent"'
    )
    assert line(f"[ACTION] {first}#2 failed").endswith(
        "run_evaluation ❌, create_v1_artifacts ✅ — model artifact research/missing.pth not found"
    )
    assert line(f"[ACTION] {first}#3 succeeded").endswith("deploy_model ❌, deploy_model ✅")
    assert line(f"[ACTION] {first}#5 succeeded").endswith("check_files ✅ (from text)")
    assert "wrote a tool call as text instead of calling the tool: check_files" in line(
        f"[ACTION] {first}#4 unverified"
    )
    # one line for every agent that called no tool, and the text calls said plainly
    for agent, n in (("ops_commander", 1), ("compliance_monitor", 4), ("rollback_officer", 6)):
        assert "❌ unverified: " in line(f"[TOOL] {agent} called no tool for {first}#{n} ")
    assert "not run (strict parsing)" in line(
        f"compliance_monitor wrote a tool call as text instead of calling the tool: check_files, for {first}#4"
    )
    assert "running it (lenient parsing)" in line(
        f"integration_engineer wrote a tool call as text instead of calling the tool: check_files, for {first}#5"
    )
    assert not [x for x in lines if "❌" in x and ": ```" in x]  # never the text's first line as the reason


def test_invented_numbers_reach_the_next_meeting_only_as_a_labelled_claim(evidence_run):
    ws, provider, recs, first, _ = evidence_run
    second = [r.data for r in recs if r.kind == "meeting_started"][1]
    state = second["state"]
    le = state["last_execution"]
    assert sorted(a["id"] for a in le["unverified"]) == [1, 4, 6]
    invented = next(a for a in le["unverified"] if a["id"] == 6)
    assert invented["claim"] == CLAIM_LABEL + INVENTED and invented["error"] == "no tool was called"
    assert [a["id"] for a in state["failed_actions"]] == [2]
    assert state["failed_actions"][0]["error"] == "model artifact research/missing.pth not found"
    # measured: only what the tools recorded (nothing was evaluated)
    assert state["current"]["stage"] == "shadow" and state["current"]["evaluated"] is False
    assert state["current"]["metrics"] is None and state["evaluations_recorded"] == 0

    def strings(x):
        if isinstance(x, dict):
            return [s for v in x.values() for s in strings(v)]
        if isinstance(x, list):
            return [s for v in x for s in strings(v)]
        return [x] if isinstance(x, str) else []

    said = [s for s in strings(state) if "0.741" in s]
    assert said and all(s.startswith(CLAIM_LABEL) for s in said)
    # the moderator's prompt in the next meeting: the numbers only ever on a labelled line
    prompt = provider.requests_for("moderator", "synthesis")[1].messages[0].content
    shown = [x for x in prompt.splitlines() if "0.741" in x]
    assert shown and all(CLAIM_LABEL in x for x in shown)


def test_an_unverified_action_is_finished_and_not_carried_out_again_on_resume(tmp_path, config_copy):
    """Cut off in the middle of action 2 (its first model call), the run resumes: action 1,
    unverified, counts as finished and its agent is not asked again."""
    ws, s = seed(tmp_path / "ws"), _settings(config_copy)
    crashing = _provider()
    crashing.fail_from(8, Crash("killed"))  # 5 contributions, the synthesis, action 1, then action 2's first call
    with pytest.raises(Crash):
        _run(ws, s, crashing)
    first = next(r.data["meeting_id"] for r in records(ws) if r.kind == "meeting_started")
    done = [r.data for r in records(ws) if r.kind == "action_finished"]
    assert [(d["action_id"], d["status"]) for d in done] == [(f"{first}#1", "unverified")]
    resumed = _provider()
    assert _run(ws, s, resumed)["status"] == "finished"
    asked = [r.context["action_id"] for r in resumed.requests_for(purpose="action")]
    assert f"{first}#1" not in asked and f"{first}#2" in asked
    ones = [r.data for r in records(ws) if r.kind == "action_finished" and r.data["action_id"] == f"{first}#1"]
    assert len(ones) == 1
