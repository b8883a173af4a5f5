"""The meeting protocol: absent agents, the fallback moderator, synthesis repair, parallel rounds."""

import json
import threading

from agent_backend import FRESH_STATE as STATE
from fakes import OFFLINE, ScriptedProvider

from cvagents.config import Settings
from cvagents.llm.base import ProviderError
from cvagents.planning.meeting import Meeting
from cvagents.planning.team import build_teams

DOWN = ProviderError("openai gpt-4-turbo: HTTP 500 after 5 attempts")


def teams_of(project_root, provider):
    return build_teams(Settings(project_root), lambda name, cfg: provider)


def test_a_failing_agent_is_absent_and_the_meeting_goes_on(project_root, scripted_provider):
    scripted_provider.always(DOWN, agent="critic").always(DOWN, agent="tech_analysis")
    out = Meeting(teams_of(project_root, scripted_provider)).hold("meeting_1", 1, "t", STATE, [])
    assert out.status == "completed" and set(out.absent) == {"critic", "tech_analysis"}
    assert "HTTP 500" in out.absent["critic"]
    assert "critic" not in out.participants and "data_analyst" in out.participants


def test_moderator_outage_falls_back_to_the_offline_moderator(project_root, scripted_provider):
    scripted_provider.always(DOWN, agent="moderator")
    out = Meeting(teams_of(project_root, scripted_provider)).hold("meeting_1", 1, "t", STATE, [])
    assert out.status == "completed" and out.handoff.count > 0
    assert any("fallback moderator synthesised" in n for n in out.notes)


def test_malformed_synthesis_is_repaired_with_the_validation_error(project_root, scripted_provider):
    good = json.dumps(
        {
            "decisions": [],
            "actions": [
                {
                    "action": "Deploy V1.0 to the shadow stage.",
                    "owner": "ops_commander",
                    "priority": "high",
                    "estimated_duration": "5min",
                    "success_criteria": "deployment/shadow manifest sha256 matches the model",
                }
            ],
        }
    )
    bad = '```json\n{"actions": [{"action": "Deploy", "owner": "janitor"}]}\n```'
    scripted_provider.enqueue([bad, "Here you go:\n" + good], agent="moderator", purpose="synthesis")
    out = Meeting(teams_of(project_root, scripted_provider)).hold("m", 1, "t", STATE, [])
    assert out.status == "completed" and out.handoff.count == 1
    seen = [r.messages[-1].content for r in scripted_provider.requests_for("moderator", "synthesis")]
    assert "failed validation" in seen[1] and "actions.0.priority: Field required" in seen[1]


def test_synthesis_that_never_validates_fails_the_meeting_and_keeps_the_old_handoff(project_root, scripted_provider):
    scripted_provider.enqueue(["no json"] * 3, agent="moderator", purpose="synthesis")
    fallback = ScriptedProvider(*["still no json"] * 3)
    m = Meeting(teams_of(project_root, scripted_provider), synthesis_retries=2, fallback_moderator=fallback)
    out = m.hold("m", 1, "t", STATE, [])
    assert out.status == "failed" and out.handoff is None
    assert len(scripted_provider.requests_for("moderator", "synthesis")) == 3 and len(fallback.requests) == 3


def test_contributions_are_parallel(project_root, scripted_provider):
    teams = teams_of(project_root, scripted_provider)
    speakers = len(teams.planning) - 1  # everyone but the moderator
    all_in = threading.Barrier(speakers, timeout=30)

    def together(request):
        all_in.wait()  # returns only once every speaker is asking at the same time
        return OFFLINE

    scripted_provider.always(together, purpose="contribution")
    out = Meeting(teams).hold("m", 1, "t", STATE, [])
    assert speakers == 5 and scripted_provider.max_in_flight == 5  # five speakers at once, then the moderator
    assert out.status == "completed" and not out.absent  # nobody timed out waiting for the others


def test_memo_reuses_journaled_responses(project_root, scripted_provider):
    teams = teams_of(project_root, scripted_provider)
    seen = {}
    m1 = Meeting(
        teams,
        record=lambda kind, d: (
            seen.__setitem__((d["agent"], d["purpose"], d["prompt_hash"]), d) if kind == "agent_response" else None
        ),
    )
    first = m1.hold("m", 1, "t", STATE, [])
    n = len(scripted_provider.requests)
    m2 = Meeting(teams, memo=lambda a, p, h: seen.get((a, p, h)))
    second = m2.hold("m", 1, "t", STATE, [])
    assert len(scripted_provider.requests) == n  # nothing asked twice
    assert [s.text for s in second.speeches] == [s.text for s in first.speeches]
