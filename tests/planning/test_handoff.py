import json

import pytest

from cvagents.planning import handoff as hf

OWNERS = {
    "ops_commander",
    "latency_analyst",
    "compliance_monitor",
    "rollback_officer",
    "infra_guardian",
    "integration_engineer",
}
GOOD = {
    "decisions": [{"decision": "Deploy to shadow", "rationale": "artifacts exist"}],
    "go_no_go": {"stage": "shadow", "decision": "go", "reason": "first stage"},
    "risks": [],
    "cross_pollination": [],
    "actions": [
        {
            "action": "Collect baseline metrics for every stage",
            "owner": "compliance_monitor",
            "priority": "low",
            "estimated_duration": "2min",
            "success_criteria": "All SLOs logged",
        },
        {
            "action": "Deploy V1.0 to shadow environment",
            "owner": "ops_commander",
            "priority": "high",
            "estimated_duration": "5min",
            "success_criteria": "Model deployed to the shadow stage",
        },
        {
            "action": "Evaluate V1.0 on validation set",
            "owner": "latency_analyst",
            "priority": "medium",
            "estimated_duration": "3min",
            "success_criteria": "NDCG@10 >= 0.72",
        },
        {
            "action": "Run the rollback drill on shadow",
            "owner": "rollback_officer",
            "priority": "high",
            "estimated_duration": "2min",
            "success_criteria": "Drill passes",
        },
    ],
}


def test_fences_and_prose_are_stripped():
    text = "Here is the plan:\n```json\n" + json.dumps(GOOD) + "\n```\nThanks."
    syn = hf.parse_synthesis(text, OWNERS, 20)
    assert len(syn.actions) == 4


@pytest.mark.parametrize(
    "mutate, expect",
    [
        (lambda d: d["actions"][0].__setitem__("owner", "janitor"), "actions.0.owner"),
        (lambda d: d["actions"][1].__setitem__("priority", "urgent"), "actions.1.priority"),
        (lambda d: d["actions"][2].pop("success_criteria"), "actions.2.success_criteria"),
        (lambda d: d.__setitem__("actions", d["actions"] * 6), "at most 20"),
    ],
)
def test_invalid_synthesis_is_refused_whole(mutate, expect):
    d = json.loads(json.dumps(GOOD))
    mutate(d)
    with pytest.raises(hf.HandoffError) as e:
        hf.parse_synthesis(json.dumps(d), OWNERS, 20)
    assert expect in str(e.value)


def test_not_json_at_all():
    with pytest.raises(hf.HandoffError):
        hf.parse_synthesis("I think we should deploy.", OWNERS, 20)


def test_handoff_file_has_the_guides_format_exactly(tmp_path):
    syn = hf.parse_synthesis(json.dumps(GOOD), OWNERS, 20)
    h = hf.build_handoff(syn, "meeting_20251013_200000", "2025-10-13T20:00:00", 2)
    p = tmp_path / "pending_actions.json"
    hf.write_handoff(p, h)
    raw = json.loads(p.read_text())
    assert list(raw) == ["timestamp", "meeting_id", "actions", "count", "source"]
    assert raw["source"] == "planning_meeting_2" and raw["count"] == 4
    assert [list(a) for a in raw["actions"]] == [
        ["id", "action", "owner", "priority", "estimated_duration", "success_criteria"]
    ] * 4
    assert [a["id"] for a in raw["actions"]] == [1, 2, 3, 4]
    assert hf.read_handoff(p, OWNERS) == h
    assert not list(tmp_path.glob("*.tmp"))


def test_template_is_a_valid_handoff(project_root):
    h = hf.read_handoff(project_root / "reports" / "handoff" / "pending_actions_TEMPLATE.json", OWNERS)
    assert h.count == 3 and h.source == "planning_meeting_2"


def test_priority_order_high_medium_low_then_id():
    syn = hf.parse_synthesis(json.dumps(GOOD), OWNERS, 20)
    h = hf.build_handoff(syn, "m", "t", 1)
    assert [(a.priority, a.id) for a in hf.by_priority(h.actions)] == [
        ("high", 2),
        ("high", 4),
        ("medium", 3),
        ("low", 1),
    ]


def test_hand_edited_handoff_with_bad_count_or_owner_is_rejected(tmp_path):
    syn = hf.parse_synthesis(json.dumps(GOOD), OWNERS, 20)
    raw = hf.handoff_dict(hf.build_handoff(syn, "m", "t", 1))
    p = tmp_path / "pending_actions.json"
    p.write_text(json.dumps({**raw, "count": 9}))
    with pytest.raises(hf.HandoffError) as e:
        hf.read_handoff(p, OWNERS)
    assert str(p) in str(e.value) and "count" in str(e.value)
    raw["actions"][0]["owner"] = "intern"
    p.write_text(json.dumps(raw))
    with pytest.raises(hf.HandoffError) as e:
        hf.read_handoff(p, OWNERS)
    assert "intern" in str(e.value)


def _with(**action) -> str:
    d = json.loads(json.dumps(GOOD))
    d["actions"][1].update(action)
    return json.dumps(d)


@pytest.mark.parametrize(
    "fragment",
    [
        "re_evaluate_model",
        "run_evaluation",
        "Evaluate",
        "Evaluate it",
        "runEvaluation on shadow",
        "re_evaluate_model on shadow",
        "`deploy_model` stage=shadow",
        "Call run_evaluation(shadow)",
    ],
)
def test_an_identifier_or_a_fragment_is_not_an_action(fragment):
    with pytest.raises(hf.HandoffError) as e:
        hf.parse_synthesis(_with(action=fragment), OWNERS, 20)
    msg = str(e.value)
    assert msg.startswith(f"actions.1.action: {fragment!r} is not an action sentence — expected: an action is ")
    assert hf.ACTION_EXAMPLE in msg and f"at least {hf.MIN_ACTION_WORDS} words" in msg
    assert "\n" not in msg and "success_criteria" not in msg


@pytest.mark.parametrize(
    "criteria", ["done", "deployed", "Model deployed", "the tool reports success", "It works", "complete"]
)
def test_a_success_criterion_that_names_nothing_to_measure_is_refused(criteria):
    with pytest.raises(hf.HandoffError) as e:
        hf.parse_synthesis(_with(success_criteria=criteria), OWNERS, 20)
    msg = str(e.value)
    assert msg.startswith(
        f"actions.1.success_criteria of 'Deploy V1.0 to shadow environment': {criteria!r} names nothing to measure"
        " — expected: a success_criteria names a metric or observable with its threshold: a number, or one of "
    )
    assert ", ".join(hf.MEASURABLE_TERMS[: hf.TERMS_QUOTED]) in msg and "action sentence" not in msg


@pytest.mark.parametrize(
    "action, criteria",
    [
        ("Re-evaluate the candidate on the validation set", "NDCG@10 lower CI bound >= 0.72"),
        ("Replay traffic through the 5% router", "error rate below 1 percent and P95 < 50 ms"),
        ("Measure MRR and recall of the candidate.", "MRR and recall@10 reported for the candidate"),
        ("**Roll back** the 20_percent stage now", "the 20_percent stage serves the previous version"),
        ("Check that the essential files exist (research/v1_production.pth).", "check_files reports 0 missing"),
        ("Deploy research/v1_production.pth to 50_percent.", "the 50_percent stage serves the model"),
    ],
)
def test_a_sentence_with_a_measurable_criterion_passes(action, criteria):
    syn = hf.parse_synthesis(_with(action=action, success_criteria=criteria), OWNERS, 20)
    assert syn.actions[1].action == action and syn.actions[1].success_criteria == criteria


def test_every_broken_action_is_named_then_counted():
    d = json.loads(json.dumps(GOOD))
    for a in d["actions"]:
        a.update(action="re_evaluate_model", success_criteria="done")
    with pytest.raises(hf.HandoffError) as e:
        hf.parse_synthesis(json.dumps(d), OWNERS, 20)
    msg = str(e.value)
    assert "; and 5 more — expected: an action is " in msg  # 8 problems: 3 named, 5 counted
    assert msg.count("expected:") == 1 and "; a success_criteria names " in msg


def test_a_hand_written_handoff_is_the_person_s_own_plan(tmp_path):
    """The plan rule is the moderator's: a handoff written by hand is read as written."""
    p = tmp_path / "pending_actions.json"
    act = {"id": 1, **GOOD["actions"][1], "success_criteria": "deployed"}
    p.write_text(json.dumps({"timestamp": "t", "meeting_id": "m", "actions": [act], "count": 1, "source": "by hand"}))
    assert hf.read_handoff(p, OWNERS, 20).actions[0].success_criteria == "deployed"
