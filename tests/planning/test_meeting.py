"""The meeting protocol: absent agents, the fallback moderator, synthesis repair, parallel rounds."""

import json
import threading
import time

from agent_backend import FRESH_STATE as STATE

from cvagents.config import Settings
from cvagents.llm.base import LLMResult, ProviderError
from cvagents.offline.provider import OfflineProvider
from cvagents.planning.meeting import Meeting
from cvagents.planning.team import build_teams


class Down:
    name, model = "openai", "gpt-4-turbo"

    def complete(self, request):
        raise ProviderError("openai gpt-4-turbo: HTTP 500 after 5 attempts")


class Scripted(OfflineProvider):
    """Offline, except the synthesis answers come from a script (then offline's own)."""

    def __init__(self, answers):
        super().__init__()
        self.answers = list(answers)
        self.seen = []

    def complete(self, request):
        if request.purpose == "synthesis" and self.answers:
            self.seen.append(request.messages[-1].content)
            res = super().complete(request)
            return LLMResult(self.answers.pop(0), (), res.usage, "claude-x", "anthropic", 0.0, "end_turn")
        return super().complete(request)


def teams_with(project_root, **providers):
    settings = Settings(project_root)
    return build_teams(settings, lambda name, cfg: providers.get(name) or OfflineProvider())


def test_a_failing_agent_is_absent_and_the_meeting_goes_on(project_root):
    teams = teams_with(project_root, critic=Down(), tech_analysis=Down())
    out = Meeting(teams).hold("meeting_1", 1, "t", STATE, [])
    assert out.status == "completed" and set(out.absent) == {"critic", "tech_analysis"}
    assert "HTTP 500" in out.absent["critic"]
    assert "critic" not in out.participants and "data_analyst" in out.participants


def test_moderator_outage_falls_back_to_the_offline_moderator(project_root):
    teams = teams_with(project_root, moderator=Down())
    out = Meeting(teams).hold("meeting_1", 1, "t", STATE, [])
    assert out.status == "completed" and out.handoff.count > 0
    assert any("fallback moderator synthesised" in n for n in out.notes)


def test_malformed_synthesis_is_repaired_with_the_validation_error(project_root):
    good = json.dumps(
        {
            "decisions": [],
            "actions": [
                {
                    "action": "Deploy V1.0 to the shadow stage.",
                    "owner": "ops_commander",
                    "priority": "high",
                    "estimated_duration": "5min",
                    "success_criteria": "deployed",
                }
            ],
        }
    )
    mod = Scripted(['```json\n{"actions": [{"action": "Deploy", "owner": "janitor"}]}\n```', "Here you go:\n" + good])
    out = Meeting(
        build_teams(Settings(project_root), lambda n, c: mod if n == "moderator" else OfflineProvider())
    ).hold("m", 1, "t", STATE, [])
    assert out.status == "completed" and out.handoff.count == 1
    assert "failed validation" in mod.seen[1] and "actions.0.priority: Field required" in mod.seen[1]


def test_synthesis_that_never_validates_fails_the_meeting_and_keeps_the_old_handoff(project_root):
    bad = Scripted(["no json"] * 3)
    fallback = Scripted(["still no json"] * 3)
    m = Meeting(
        build_teams(Settings(project_root), lambda n, c: bad if n == "moderator" else OfflineProvider()),
        synthesis_retries=2,
        fallback_moderator=fallback,
    )
    out = m.hold("m", 1, "t", STATE, [])
    assert out.status == "failed" and out.handoff is None
    assert len(bad.seen) == 3 and len(fallback.seen) == 3


class Slow(OfflineProvider):
    def __init__(self, delay, counter):
        super().__init__()
        self.delay, self.counter = delay, counter

    def complete(self, request):
        with self.counter["lock"]:
            self.counter["now"] += 1
            self.counter["max"] = max(self.counter["max"], self.counter["now"])
        time.sleep(self.delay)
        with self.counter["lock"]:
            self.counter["now"] -= 1
        return super().complete(request)


def test_contributions_are_parallel(project_root):
    counter = {"lock": threading.Lock(), "now": 0, "max": 0}
    teams = build_teams(Settings(project_root), lambda n, c: Slow(0.2, counter))
    t0 = time.perf_counter()
    Meeting(teams).hold("m", 1, "t", STATE, [])
    wall = time.perf_counter() - t0
    assert counter["max"] == 5  # five speakers at once, then the moderator
    assert wall < 0.2 * 6 * 0.7  # well under a round-robin's six sequential calls


def test_memo_reuses_journaled_responses(project_root):
    calls = []

    class Count(OfflineProvider):
        def complete(self, request):
            calls.append(request.agent)
            return super().complete(request)

    teams = build_teams(Settings(project_root), lambda n, c: Count())
    seen = {}
    m1 = Meeting(
        teams,
        record=lambda kind, d: (
            seen.__setitem__((d["agent"], d["purpose"], d["prompt_hash"]), d) if kind == "agent_response" else None
        ),
    )
    first = m1.hold("m", 1, "t", STATE, [])
    n = len(calls)
    m2 = Meeting(teams, memo=lambda a, p, h: seen.get((a, p, h)))
    second = m2.hold("m", 1, "t", STATE, [])
    assert len(calls) == n  # nothing asked twice
    assert [s.text for s in second.speeches] == [s.text for s in first.speeches]
