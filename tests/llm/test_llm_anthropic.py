"""The Anthropic provider, through the real SDK, against a loopback Messages API."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from llm_servers import LLMServer, Reply, anthropic_message, error, make_request, metrics_tool  # noqa: E402

from cvagents.llm.anthropic_provider import AnthropicProvider  # noqa: E402
from cvagents.llm.base import Message, ProviderError, ToolCall  # noqa: E402

KEY = "sk-ant-test-0123456789abcdef"


@pytest.fixture
def server():
    with LLMServer("anthropic") as srv:
        yield srv


def provider(srv, *, max_retries=2, timeout_s=5.0, max_tokens=None, model="claude-test-model"):
    return AnthropicProvider(
        model, api_key=KEY, base_url=srv.base_url, timeout_s=timeout_s, max_tokens=max_tokens, max_retries=max_retries
    )


def test_plain_text(server):
    server.push(Reply(body=anthropic_message("Looks sound.", model="claude-test-model-2025")))
    res = provider(server, max_tokens=100).complete(make_request(max_tokens=256))
    assert res.text == "Looks sound."
    assert res.tool_calls == ()
    assert res.provider == "anthropic"
    assert res.model == "claude-test-model-2025"
    assert res.stop_reason == "end_turn"
    assert res.latency_s > 0
    (req,) = server.requests
    assert req.path == "/v1/messages"
    assert KEY in (req.header("authorization") or "") + (req.header("x-api-key") or "")
    assert req.header("x-stainless-retry-count") == "0"
    body = req.json
    assert body["model"] == "claude-test-model"
    assert body["max_tokens"] == 100  # the agent's cap wins over the request's 256
    assert body["system"][0]["text"] == "You are the critic."
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Review the rollout plan."}]}]
    assert "temperature" not in body and "tools" not in body


def test_tool_call_round_trip(server):
    server.push(
        Reply(
            body=anthropic_message(
                "Checking.",
                tool_calls=[
                    ("toolu_1", "read_metrics", {"stage": "shadow"}),
                    ("toolu_2", "read_metrics", {"stage": "bogus"}),
                ],
            )
        ),
        Reply(body=anthropic_message("Shadow is healthy; the second stage does not exist.")),
    )
    p = provider(server)
    first = p.complete(make_request(tools=[metrics_tool()]))
    assert first.stop_reason == "tool_use"
    assert first.text == "Checking."
    assert first.tool_calls == (
        ToolCall("toolu_1", "read_metrics", {"stage": "shadow"}),
        ToolCall("toolu_2", "read_metrics", {"stage": "bogus"}),
    )
    convo = (
        Message("user", "Review the rollout plan."),
        Message("assistant", first.text, tool_calls=first.tool_calls),
        Message("tool", '{"ndcg_at_10": 0.74}', tool_call_id="toolu_1", name="read_metrics"),
        Message("tool", "unknown stage 'bogus'", tool_call_id="toolu_2", name="read_metrics", is_error=True),
    )
    second = p.complete(make_request(*convo, tools=[metrics_tool()]))
    assert second.text.startswith("Shadow is healthy")
    assert second.stop_reason == "end_turn"

    first_body = server.requests[0].json
    assert first_body["tools"] == [
        {
            "name": "read_metrics",
            "description": "Read the latest rollout metrics for a stage.",
            "input_schema": {"type": "object", "properties": {"stage": {"type": "string"}}, "required": ["stage"]},
            "cache_control": {"type": "ephemeral"},  # the last tool is a prompt-cache breakpoint
        }
    ]
    msgs = server.requests[1].json["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    assert msgs[1]["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "read_metrics", "input": {"stage": "shadow"}},
        {"type": "tool_use", "id": "toolu_2", "name": "read_metrics", "input": {"stage": "bogus"}},
    ]
    # both results in one user turn, the failed one flagged
    assert msgs[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"ndcg_at_10": 0.74}'},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "unknown stage 'bogus'", "is_error": True},
    ]


def test_usage_with_cache(server):
    server.push(
        Reply(body=anthropic_message("ok", input_tokens=20, output_tokens=7, cache_read=1500, cache_creation=300))
    )
    res = provider(server).complete(make_request())
    assert res.usage.input_tokens == 20 + 1500 + 300  # the whole prompt
    assert res.usage.cached_tokens == 1500
    assert res.usage.output_tokens == 7


def test_max_tokens_stop_reason(server):
    server.push(Reply(body=anthropic_message("cut", stop_reason="max_tokens")))
    assert provider(server).complete(make_request()).stop_reason == "max_tokens"


def test_429_then_success_is_retried_by_the_sdk(server):
    server.push(
        error("anthropic", 429, "slow down", headers={"retry-after-ms": "10"}),
        Reply(body=anthropic_message("fine now")),
    )
    res = provider(server).complete(make_request())
    assert res.text == "fine now"
    assert [r.header("x-stainless-retry-count") for r in server.requests] == ["0", "1"]


def test_repeated_500_gives_clear_error(server):
    server.push(
        *[error("anthropic", 500, f"internal trouble {KEY}", headers={"retry-after-ms": "1"}) for _ in range(3)]
    )
    with pytest.raises(ProviderError) as ei:
        provider(server, max_retries=2).complete(make_request())
    msg = str(ei.value)
    assert "anthropic" in msg and "claude-test-model" in msg and "HTTP 500" in msg and "3 attempts" in msg
    assert ei.value.attempts == 3 and ei.value.status == 500
    assert len(server.requests) == 3
    assert KEY not in msg


def test_529_overloaded_is_retried(server):
    server.push(error("anthropic", 529, "overloaded"), Reply(body=anthropic_message("ok")))
    assert provider(server).complete(make_request()).text == "ok"


def test_400_fails_at_once(server):
    server.push(error("anthropic", 400, "messages: field required"))
    with pytest.raises(ProviderError) as ei:
        provider(server).complete(make_request())
    assert "HTTP 400" in str(ei.value) and "1 attempt" in str(ei.value) and "not retryable" in str(ei.value)
    assert len(server.requests) == 1


def test_timeout_fails_quickly(server):
    server.push(*[Reply(body=anthropic_message("late"), delay_s=3.0) for _ in range(2)])
    t0 = time.monotonic()
    with pytest.raises(ProviderError) as ei:
        provider(server, max_retries=1, timeout_s=0.2).complete(make_request())
    elapsed = time.monotonic() - t0
    assert elapsed < 2.0
    assert "timed out after 0.2s" in str(ei.value) and "2 attempts" in str(ei.value)


def test_base_url_from_environment(server, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
    server.push(Reply(body=anthropic_message("via env")))
    p = AnthropicProvider("claude-test-model", api_key=KEY, timeout_s=5, max_retries=0)
    assert p.complete(make_request()).text == "via env"


def test_with_model_shares_endpoint(server):
    server.push(Reply(body=anthropic_message("cheap")))
    p = provider(server).with_model("claude-cheap")
    assert p.complete(make_request()).text == "cheap"
    assert server.requests[0].json["model"] == "claude-cheap"
