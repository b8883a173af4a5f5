"""The scripted test provider (tests/fakes.py) does what the tests that use it rely on."""

import pytest
from fakes import OFFLINE, Delay, ScriptedProvider

from cvagents.clock import stopwatch
from cvagents.llm.base import LLMRequest, Message, ProviderError, ToolCall


def ask(p, agent="critic", purpose="contribution"):
    return p.complete(LLMRequest(agent, "role", purpose, "system", (Message("user", "hello"),), context={}))


def test_queues_are_taken_in_order_most_specific_first_then_always_then_otherwise():
    p = ScriptedProvider("everyone 1", otherwise="done")
    p.enqueue(["critic 1"], agent="critic").enqueue(["synthesis 1"], purpose="synthesis")
    p.always("moderator, always", agent="moderator")
    assert ask(p).text == "critic 1"
    assert ask(p).text == "everyone 1"
    assert ask(p).text == "done"
    assert ask(p, "moderator", "synthesis").text == "synthesis 1"
    assert ask(p, "moderator", "synthesis").text == "moderator, always"
    assert [r.agent for r in p.requests_for(purpose="synthesis")] == ["moderator", "moderator"]
    assert len(p.requests) == 5


def test_tool_calls_exceptions_results_and_functions():
    p = ScriptedProvider(
        [("deploy_model", {"stage": "shadow"}), ToolCall("x", "check_files", {})],
        ProviderError("HTTP 500"),
        ValueError,
        lambda request: f"hello {request.agent}",
        otherwise=OFFLINE,
    )
    res = ask(p)
    assert [(c.name, c.arguments) for c in res.tool_calls] == [
        ("deploy_model", {"stage": "shadow"}),
        ("check_files", {}),
    ]
    assert res.stop_reason == "tool_use" and (res.provider, res.model) == ("scripted", "scripted-1")
    with pytest.raises(ProviderError, match="HTTP 500"):
        ask(p)
    with pytest.raises(ValueError):
        ask(p)
    assert ask(p).text == "hello critic"


def test_an_empty_queue_answers_as_the_offline_provider_under_the_fakes_name():
    p = ScriptedProvider.as_offline()
    res = ask(p, purpose="action")
    assert (res.provider, res.model) == ("offline", "offline-rules-v1")
    assert res.text.startswith("RESULT: failed")  # the offline executive found no tool for an empty action


def test_delay_and_fail_from():
    p = ScriptedProvider(Delay(0.05, "late"), otherwise="ok").fail_from(3, ProviderError("down from the third call"))
    sw = stopwatch()
    assert ask(p).text == "late" and sw.elapsed() >= 0.05
    assert ask(p).text == "ok"
    with pytest.raises(ProviderError, match="third"):
        ask(p)
    with pytest.raises(ProviderError):
        ask(p)
    p.close()
    assert p.closed
