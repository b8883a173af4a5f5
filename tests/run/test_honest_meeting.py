"""A team that behaves like the small local model did, through whole runs (meeting → heartbeats
→ next meeting): a contribution that echoes the prompt, one that is empty, one cut at
``max_tokens``; a moderator that plans tool-name fragments, then repairs them, then plans
fragments every time. The records say what happened — transcript, summary, participants, the
planning monitor's data, the log — and no fragment ever reaches the handoff or an executive."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import resume_helpers as rh
from fakes import OFFLINE, Cut, ScriptedProvider, echo_prompt, synthesis_json

from cvagents.config import Settings
from cvagents.ui import dashboard_data as dd
from cvagents.ui import plots

FRAGMENTS = synthesis_json(
    [
        {
            "action": "re_evaluate_model",
            "owner": "latency_analyst",
            "priority": "high",
            "estimated_duration": "3min",
            "success_criteria": "done",
        },
        {
            "action": "run_evaluation",
            "owner": "latency_analyst",
            "priority": "high",
            "estimated_duration": "3min",
            "success_criteria": "evaluated",
        },
    ]
)
GOOD_ACTIONS = [
    {
        "action": "Check that the essential files exist (research/v1_production.pth).",
        "owner": "infra_guardian",
        "priority": "high",
        "estimated_duration": "1min",
        "success_criteria": "check_files reports 0 missing files",
    },
    {
        "action": "Collect metrics into runs/report/metrics.json and report every gate.",
        "owner": "compliance_monitor",
        "priority": "medium",
        "estimated_duration": "2min",
        "success_criteria": "metrics.json holds each gate's status",
    },
]
GOOD = synthesis_json(GOOD_ACTIONS)  # no decisions: the next meeting still learns what was planned
CUT_TEXT = "Latency in shadow is 2.1 ms at P95, far under the gate, but the drill has not run and"
SPEAKERS = {"pre_architect", "cotrr_team"}  # the two that answer properly
MODERATOR = {"agent": "moderator", "purpose": "synthesis"}


def small_model_team() -> ScriptedProvider:
    fake = ScriptedProvider.as_offline()
    fake.always(echo_prompt, agent="critic", purpose="contribution")
    fake.always("", agent="data_analyst", purpose="contribution")
    fake.always(Cut(CUT_TEXT, "length"), agent="tech_analysis", purpose="contribution")
    # meeting 1: fragments, repaired on the repair round; meeting 2: fragments every time
    # (3 attempts by the moderator, 3 by the fallback); meeting 3: a good plan
    fake.enqueue([FRAGMENTS, GOOD] + [FRAGMENTS] * 6, **MODERATOR)
    fake.always(GOOD, **MODERATOR)
    return fake


def settings_with_fallback(config_copy: Path) -> Settings:
    """The fallback moderator is the critic's provider (the same small model), not the offline
    team, so a synthesis that fails every time fails the meeting."""
    meeting = config_copy / "configs" / "meeting.yaml"
    meeting.write_text(meeting.read_text().replace("fallback_moderator: offline", "fallback_moderator: critic", 1))
    return Settings(config_copy)


@pytest.fixture(scope="module")
def run3(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("honest")
    config = tmp / "project"
    import shutil

    for part in ("configs", "prompts", "reports"):
        shutil.copytree(rh.ROOT / part, config / part)
    ws = rh.seed(tmp / "ws")
    fake = small_model_team()
    c = rh.coordinator(ws, 3, s=settings_with_fallback(config), provider=fake)
    try:
        result = c.run()
    finally:
        c.close()
    assert result["status"] == "finished" and result["meetings"] == 3
    meetings = [r.data for r in rh.records(ws) if r.kind == "meeting_completed"]
    return ws, fake, meetings


def _synthesis_prompts(fake: ScriptedProvider) -> list[str]:
    return [r.messages[-1].content for r in fake.requests_for("moderator", "synthesis")]


def test_echoed_empty_and_cut_contributions_are_recorded_and_not_counted(run3):
    ws, _fake, meetings = run3
    for m in meetings:
        assert m["participation"] == {
            "critic": "echoed",
            "data_analyst": "empty",
            "tech_analysis": "cut",
            "pre_architect": "took_part",
            "cotrr_team": "took_part",
            "moderator": "took_part",
        }
        assert m["participants"] == sorted(SPEAKERS | {"moderator"})
        assert not m["absent"]
    m1 = meetings[0]
    said = {s["agent"]: s for s in m1["speeches"] if s["purpose"] == "contribution"}
    assert said["tech_analysis"]["stop_reason"] == "length" and said["tech_analysis"]["text"] == CUT_TEXT
    mid = m1["meeting_id"]

    transcript = (ws / "reports" / "planning" / f"transcript_{mid}.md").read_text(encoding="utf-8")
    sections = {s.split(" — ")[0]: s for s in transcript.split("\n## ")[1:]}
    assert "_⚠️ Not counted as taking part: repeated the prompt back (" in sections["Critic"]
    assert "_⚠️ Not counted as taking part: answered nothing_" in sections["Data Analyst"]
    assert (
        "_⚠️ Not counted as taking part: was cut at its output limit (stop reason 'length')_"
        in sections["Tech Analysis"]
    )
    assert "Not counted" not in sections["Pre Architect"] + sections["Cotrr Team"]

    summary = (ws / "reports" / "planning" / f"summary_{mid}.md").read_text(encoding="utf-8")
    assert "- Agents participated: 3 (cotrr_team, moderator, pre_architect)" in summary
    assert "- Not counted as taking part: critic (echoed); data_analyst (empty); tech_analysis (cut)" in summary
    assert "critic's contribution was not counted as taking part: repeated the prompt back" in summary

    log = (ws / "executive.log").read_text(encoding="utf-8")
    assert f"critic (meeting {mid}): critic's contribution was not counted" in log
    assert "📊 Agents participated: 3 " in log


def test_only_real_contributions_reach_the_moderator_and_a_cut_one_says_so(run3):
    _ws, fake, _meetings = run3
    first = _synthesis_prompts(fake)[0]
    contributions = first.split("## Contributions\n", 1)[1]
    assert "### critic" not in contributions and "### data_analyst" not in contributions
    assert f"### tech_analysis (round 1)\n{CUT_TEXT}\n[cut at its output limit]" in contributions
    assert "### pre_architect" in contributions and "### cotrr_team" in contributions


def test_fragments_go_back_through_the_repair_round_and_never_reach_the_handoff(run3):
    ws, fake, meetings = run3
    prompts = _synthesis_prompts(fake)
    assert len(prompts) == 2 + 6 + 1  # meeting 1: fragments, repaired; meeting 2: 3 + 3 fallback; meeting 3
    repair = prompts[1]
    assert "Your answer failed validation: actions.0.action: 're_evaluate_model' is not an action sentence; " in repair
    assert "actions.0.success_criteria of 're_evaluate_model': 'done' names nothing to measure; " in repair
    assert "expected: an action is an instruction a person could act on" in repair
    assert "'Re-evaluate the candidate on the validation set'" in repair

    m1, m2, m3 = meetings
    assert m1["status"] == "completed" and [a["action"] for a in m1["handoff"]["actions"]] == [
        a["action"] for a in GOOD_ACTIONS
    ]
    assert m2["status"] == "failed" and m2["handoff"] is None
    assert "'re_evaluate_model' is not an action sentence" in m2["no_plan_reason"]
    assert m3["status"] == "completed"

    recs = rh.records(ws)
    rejected = [r.data for r in recs if r.kind == "synthesis_rejected"]
    assert [(r["meeting_id"], r["by"]) for r in rejected] == [(m1["meeting_id"], "moderator")] + [
        (m2["meeting_id"], by) for by in ["moderator"] * 3 + ["fallback moderator"] * 3
    ]
    carried_out = {r.data["action"] for r in recs if r.kind == "action_started"}
    assert carried_out == {a["action"] for a in GOOD_ACTIONS}  # only the repaired plan was acted on
    handoff = json.loads((ws / "reports" / "handoff" / "pending_actions.json").read_text())
    assert all("_" not in a["action"].split()[0] for a in handoff["actions"])
    assert not any("re_evaluate_model" in p.read_text() for p in (ws / "reports" / "handoff").rglob("*.json"))

    log = [x for x in (ws / "executive.log").read_text(encoding="utf-8").splitlines() if "Synthesis rejected" in x]
    assert len(log) == 7
    assert f"❌ Synthesis rejected ({m1['meeting_id']}, moderator, attempt 1 of 3): actions.0.action:" in log[0]
    assert f"({m2['meeting_id']}, fallback moderator, attempt 3 of 3)" in log[-1]
    failed = [x for x in (ws / "executive.log").read_text(encoding="utf-8").splitlines() if "❌ Meeting failed" in x]
    assert len(failed) == 1 and "(the fallback moderator's synthesis failed the action schema: actions.0" in failed[0]
    assert "not counted" not in failed[0]  # the reason, not every note of the meeting


def test_the_next_meetings_learn_what_each_meeting_concluded(run3):
    """Meeting 1 decided nothing in words but planned; meeting 2 produced no plan: the prompts
    of meetings 2 and 3 say so, not an empty line."""
    ws, fake, meetings = run3
    m1, m2, _ = (m["meeting_id"] for m in meetings)
    started = [r.data for r in rh.records(ws) if r.kind == "meeting_started"]
    assert started[0]["earlier"] == []
    line1 = (
        f"{m1}: 2 actions: Check that the essential files exist (research/v1_production.pth).; "
        "Collect metrics into runs/report/metrics.json and report every gate."
    )
    assert started[1]["earlier"] == [line1]
    line2 = started[2]["earlier"][1]
    assert started[2]["earlier"][0] == line1
    assert line2.startswith(
        f"{m2}: failed, no new plan (the previous one stands): the fallback moderator's synthesis failed the "
        "action schema: actions.0.action: 're_evaluate_model' is not an action sentence"
    )
    third = fake.requests_for("pre_architect", "contribution")[-1]  # meeting 3's prompt, as the agent got it
    history = third.messages[-1].content.split("## Earlier meetings (summaries)\n", 1)[1]
    assert history.startswith(f"- {line1}\n- {m2}: failed, no new plan")


def test_the_planning_monitor_shows_who_did_not_count_and_why(run3):
    ws, _fake, meetings = run3
    p = dd.planning_data(dd.Source(ws))
    part = p["participation"]
    for m in meetings:
        col = part[m["meeting_id"]]
        assert col["critic"] == "echoed" and col["data_analyst"] == "empty" and col["tech_analysis"] == "cut"
        assert col["pre_architect"] == col["cotrr_team"] == col["moderator"] == "✓"
    assert list(p["meetings"]["agents"]) == [3, 3, 3]
    ax = plots.participation_figure(part).axes[0]
    marks = [t.get_text() for t in ax.texts]
    assert marks.count("echoed") == marks.count("empty") == marks.count("cut") == 3 and marks.count("✓") == 9
    assert "echoed, empty or cut — not counted" in ax.get_xlabel()


def test_a_team_that_takes_part_is_counted_whole(tmp_path):
    """The offline team, unscripted: nobody is flagged (the echo measure does not catch agents
    that quote the state)."""
    ws = rh.seed(tmp_path / "ws")
    c = rh.coordinator(ws, 1, provider=ScriptedProvider.as_offline(otherwise=OFFLINE))
    try:
        c.run()
    finally:
        c.close()
    (m,) = [r.data for r in rh.records(ws) if r.kind == "meeting_completed"]
    assert set(m["participation"].values()) == {"took_part"} and len(m["participants"]) == 6
    assert m["status"] == "completed" and m["handoff"]["count"] > 0
