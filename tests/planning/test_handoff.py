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
