"""Requests are ordered for the providers' prompt caches: what is the same from one request of an
agent to its next (system prompt, the fixed ask, the rollout's stable state) comes first, what
changes (this meeting, its agenda, the action) last."""

import copy

from agent_backend import FRESH_STATE as STATE

from cvagents.config import Settings
from cvagents.planning.meeting import Meeting
from cvagents.planning.team import build_teams


def common_prefix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def test_two_meetings_share_the_stable_prefix_of_each_agents_request(project_root, scripted_provider):
    meeting = Meeting(build_teams(Settings(project_root), lambda name, cfg: scripted_provider))
    later = copy.deepcopy(STATE)
    later["meeting_number"] = 2
    meeting.hold("meeting_a", 1, "t", STATE, [])
    meeting.hold("meeting_b", 2, "t", later, ["meeting_a: stay in shadow (3 actions)"])
    for agent in ("critic", "data_analyst", "moderator"):
        purpose = "synthesis" if agent == "moderator" else "contribution"
        asked = scripted_provider.requests_for(agent, purpose)
        first = next(r for r in asked if "meeting_a" in r.messages[0].content)
        second = next(r for r in asked if "meeting_b" in r.messages[0].content)
        assert first.system == second.system
        a, b = first.messages[0].content, second.messages[0].content
        shared = b[: common_prefix(a, b)]
        # the ask and every stable state key are in the shared prefix; the meeting is not
        assert "Return ONLY a JSON object" in shared if agent == "moderator" else "Answer as the" in shared
        for key in ('"stages_order"', '"thresholds"'):
            assert key in shared, (agent, key)
        assert "meeting_b" not in shared and b.index("meeting_b") > b.index('"thresholds"')
