"""A run's OpenTelemetry trace (``cvagents.tracing``, on for the test through an in-memory
exporter): one meeting and one heartbeat of an offline run make the tree

    cvagents.run
    ├── cvagents.meeting ── chat <model> (one per contribution and the synthesis)
    └── cvagents.heartbeat ── cvagents.action ── chat <model>, execute_tool <tool>

with the GenAI attributes on each agent call, the rollout's decisions and the gates' verdicts
as events, and no key in any attribute."""

from __future__ import annotations

import dataclasses
import json

from fakes import ScriptedProvider
from short_run import short_run

from cvagents.offline.provider import OfflineProvider
from cvagents.secrets import forget_secrets, register_secret

FAKE_KEY = "sk-ant-api03-tracing-FAKE-0123456789abcdef"
SECRET = "hunter2-correct-horse-battery"  # not shaped like a key: only its registration redacts it


def _leaky_moderator():
    """The offline team, except that the moderator writes both secrets into the first action."""
    offline = OfflineProvider()

    def synthesis(request):
        res = offline.complete(request)
        plan = json.loads(res.text)
        plan["actions"][0]["action"] += f" (token {SECRET}, key {FAKE_KEY})"
        return dataclasses.replace(res, text=json.dumps(plan))

    return ScriptedProvider.as_offline().always(synthesis, agent="moderator", purpose="synthesis")


def _everything(span) -> list:
    """Every attribute value of a span and of its events, and its status text."""
    values = list(span.attributes.values()) + [span.status.description or "", span.name]
    for e in span.events:
        values += [e.name, *e.attributes.values()]
    return values


def test_a_run_is_traced_as_a_tree_with_genai_attributes_events_and_no_key(
    seeded_workspace, span_exporter, monkeypatch
):
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    register_secret(SECRET)  # as the key store registers every key it hands out
    try:
        result = short_run(seeded_workspace, offline=_leaky_moderator())
    finally:
        forget_secrets()
    assert (result["meetings"], result["heartbeats"]) == (1, 1), result

    spans = span_exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    assert len({s.context.trace_id for s in spans}) == 1  # one trace

    def parent(s):
        return by_id[s.parent.span_id] if s.parent is not None else None

    def children(s, prefix):
        return [c for c in spans if parent(c) is s and c.name.startswith(prefix)]

    (root,) = [s for s in spans if s.parent is None]
    assert root.name == "cvagents.run"
    assert root.attributes["cvagents.session_id"] == result["session_id"]
    assert root.attributes["cvagents.meetings"] == 1 and root.attributes["cvagents.heartbeats"] == 1

    # run ⊃ meeting ⊃ agent calls: every planning agent speaks, the moderator synthesises
    (meeting,) = children(root, "cvagents.meeting")
    assert meeting.attributes["cvagents.status"] == "completed"
    calls = children(meeting, "chat ")
    assert len(calls) == len(meeting.attributes["cvagents.agents"])  # five contributions and the synthesis
    assert [c.attributes["cvagents.purpose"] for c in calls].count("synthesis") == 1
    for c in calls:
        a = c.attributes
        assert c.name == f"chat {a['gen_ai.request.model']}"
        assert a["gen_ai.operation.name"] == "chat"
        assert a["gen_ai.provider.name"] == a["gen_ai.system"] == "cvagents.offline"
        assert a["gen_ai.request.model"] == a["gen_ai.response.model"] == "offline-rules-v1"
        assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
        assert a["cvagents.cost_usd"] == 0.0
        assert a["gen_ai.agent.name"] in meeting.attributes["cvagents.agents"]
        assert c.kind.name == "CLIENT"

    # run ⊃ heartbeat ⊃ action ⊃ (agent calls, tool calls)
    (heartbeat,) = children(root, "cvagents.heartbeat")
    actions = children(heartbeat, "cvagents.action")
    assert len(actions) == heartbeat.attributes["cvagents.actions"] > 0
    for action in actions:
        asked = children(action, "chat ")
        assert asked and all(c.attributes["cvagents.purpose"] == "action" for c in asked)
        assert {c.attributes["gen_ai.agent.name"] for c in asked} == {action.attributes["cvagents.agent"]}
    tools = [t for a in actions for t in children(a, "execute_tool ")]
    assert {t.attributes["gen_ai.tool.name"] for t in tools} >= {"deploy_model"}
    for t in tools:
        assert t.name == f"execute_tool {t.attributes['gen_ai.tool.name']}"
        assert t.attributes["cvagents.tool.status"] in ("succeeded", "failed", "refused")
        assert t.attributes["cvagents.action_id"] == parent(t).attributes["cvagents.action_id"]
    assert not [s for s in spans if s.name.startswith("execute_tool ") and parent(s).name != "cvagents.action"]

    # the rollout's decisions where they were made: the deployment in its tool call, the
    # controller's review (a verdict of the gates, and its decision) in the heartbeat
    (deploy,) = [t for t in tools if t.attributes["gen_ai.tool.name"] == "deploy_model"]
    (deployed,) = [e for e in deploy.events if e.name == "cvagents.rollout_decision"]
    assert deployed.attributes["cvagents.outcome"] == "deployed"
    assert deployed.attributes["cvagents.stage"] == "shadow"
    verdicts = [e for e in heartbeat.events if e.name == "cvagents.gate_verdict"]
    assert [v.attributes["cvagents.stage"] for v in verdicts] == ["shadow"]
    assert verdicts[0].attributes["cvagents.verdict"] in ("pass", "fail", "inconclusive")
    assert any(g.startswith("ndcg_at_10=") for g in verdicts[0].attributes["cvagents.gates"])
    reviewed = [e for e in heartbeat.events if e.name == "cvagents.rollout_decision"]
    assert reviewed and all(e.attributes["cvagents.source"] == "controller" for e in reviewed)

    # the moderator wrote both secrets into an action: the action's span has its text, redacted
    first = next(a for a in actions if a.attributes["cvagents.action_id"].endswith("#1"))
    assert "(token [REDACTED], key [REDACTED])" in first.attributes["cvagents.action"]
    leaks = [(s.name, v) for s in spans for v in _everything(s) if FAKE_KEY in str(v) or SECRET in str(v)]
    assert leaks == []
