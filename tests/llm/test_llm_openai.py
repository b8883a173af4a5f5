"""The OpenAI provider, through the real SDK, against a loopback Chat Completions API."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from llm_servers import LLMServer, Reply, error, make_request, metrics_tool, openai_completion  # noqa: E402

from cvagents.llm.base import Message, ProviderError, ToolCall  # noqa: E402
from cvagents.llm.openai_provider import PLACEHOLDER_KEY, OpenAIProvider  # noqa: E402

KEY = "sk-test-openai-0123456789abcdef"


@pytest.fixture
def server():
    with LLMServer("openai") as srv:
        yield srv


def provider(srv, *, max_retries=2, timeout_s=5.0, max_tokens=None, api_key=KEY, model="gpt-test-model"):
    return OpenAIProvider(
        model,
        api_key=api_key,
        base_url=srv.base_url,
        timeout_s=timeout_s,
        max_tokens=max_tokens,
        max_retries=max_retries,
    )


def test_plain_text(server):
    server.push(Reply(body=openai_completion("Looks sound.", model="gpt-test-model-2024")))
    res = provider(server, max_tokens=100).complete(make_request(max_tokens=256))
    assert (res.text, res.provider, res.model, res.stop_reason) == (
        "Looks sound.",
        "openai",
        "gpt-test-model-2024",
        "end_turn",
    )
    assert res.tool_calls == ()
    (req,) = server.requests
    assert req.path == "/v1/chat/completions"
    assert req.header("authorization") == f"Bearer {KEY}"
    assert req.header("x-stainless-retry-count") == "0"
    body = req.json
    assert body["model"] == "gpt-test-model"
    assert body["max_tokens"] == 100  # a compatible server gets max_tokens, capped by the agent's limit
    assert "max_completion_tokens" not in body
    assert body["messages"] == [
        {"role": "system", "content": "You are the critic."},
        {"role": "user", "content": "Review the rollout plan."},
    ]


def test_official_endpoint_uses_max_completion_tokens():
    p = OpenAIProvider("gpt-4o-mini", api_key=KEY, base_url="https://api.openai.com/v1", max_tokens=64)
    params = p.build_params(make_request(max_tokens=256))
    assert params["max_completion_tokens"] == 64 and "max_tokens" not in params


def test_tool_call_round_trip(server):
    server.push(
        Reply(
            body=openai_completion(
                None,
                tool_calls=[
                    ("call_a", "read_metrics", {"stage": "shadow"}),
                    ("call_b", "read_metrics", {"stage": "bogus"}),
                ],
            )
        ),
        Reply(body=openai_completion("Shadow is healthy.")),
    )
    p = provider(server)
    first = p.complete(make_request(tools=[metrics_tool()]))
    assert first.stop_reason == "tool_use" and first.text == ""
    assert first.tool_calls == (
        ToolCall("call_a", "read_metrics", {"stage": "shadow"}),
        ToolCall("call_b", "read_metrics", {"stage": "bogus"}),
    )
    convo = (
        Message("user", "Review the rollout plan."),
        Message("assistant", "", tool_calls=first.tool_calls),
        Message("tool", '{"ndcg_at_10": 0.74}', tool_call_id="call_a", name="read_metrics"),
        Message("tool", "unknown stage", tool_call_id="call_b", name="read_metrics", is_error=True),
    )
    second = p.complete(make_request(*convo, tools=[metrics_tool()]))
    assert second.text == "Shadow is healthy." and second.stop_reason == "end_turn"

    assert server.requests[0].json["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "read_metrics",
                "description": "Read the latest rollout metrics for a stage.",
                "parameters": {"type": "object", "properties": {"stage": {"type": "string"}}, "required": ["stage"]},
            },
        }
    ]
    msgs = server.requests[1].json["messages"]
    assert msgs[2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_a",
                "type": "function",
                "function": {"name": "read_metrics", "arguments": '{"stage": "shadow"}'},
            },
            {
                "id": "call_b",
                "type": "function",
                "function": {"name": "read_metrics", "arguments": '{"stage": "bogus"}'},
            },
        ],
    }
    assert msgs[3] == {"role": "tool", "tool_call_id": "call_a", "content": '{"ndcg_at_10": 0.74}'}
    assert msgs[4] == {"role": "tool", "tool_call_id": "call_b", "content": "ERROR: unknown stage"}


def test_unparseable_arguments_are_kept(server):
    server.push(Reply(body=openai_completion(None, tool_calls=[("c1", "read_metrics", '{"stage": "sha')])))
    res = provider(server).complete(make_request(tools=[metrics_tool()]))
    assert res.tool_calls[0].arguments == {"_unparsed_arguments": '{"stage": "sha'}


def test_local_server_says_stop_with_tool_calls(server):
    server.push(Reply(body=openai_completion(None, tool_calls=[("c1", "read_metrics", {})], finish_reason="stop")))
    assert provider(server).complete(make_request()).stop_reason == "tool_use"


def test_usage_with_cache(server):
    server.push(Reply(body=openai_completion("ok", prompt_tokens=2000, completion_tokens=40, cached_tokens=1536)))
    res = provider(server).complete(make_request())
    assert (res.usage.input_tokens, res.usage.output_tokens, res.usage.cached_tokens) == (2000, 40, 1536)


def test_length_stop_reason(server):
    server.push(Reply(body=openai_completion("cut", finish_reason="length")))
    assert provider(server).complete(make_request()).stop_reason == "max_tokens"


def test_local_server_without_key(server):
    server.push(Reply(body=openai_completion("from llama")))
    res = provider(server, api_key=None).complete(make_request())
    assert res.text == "from llama"
    assert server.requests[0].header("authorization") == f"Bearer {PLACEHOLDER_KEY}"


def test_no_key_and_no_base_url_is_refused():
    with pytest.raises(ValueError):
        OpenAIProvider("gpt-test", api_key=None)


def test_429_then_success_is_retried_by_the_sdk(server):
    server.push(
        error("openai", 429, "rate limited", headers={"retry-after-ms": "10"}),
        Reply(body=openai_completion("fine now")),
    )
    assert provider(server).complete(make_request()).text == "fine now"
    assert [r.header("x-stainless-retry-count") for r in server.requests] == ["0", "1"]


def test_repeated_500_gives_clear_error(server):
    server.push(*[error("openai", 500, f"internal trouble {KEY}", headers={"retry-after-ms": "1"}) for _ in range(4)])
    with pytest.raises(ProviderError) as ei:
        provider(server, max_retries=3).complete(make_request())
    msg = str(ei.value)
    assert "openai" in msg and "gpt-test-model" in msg and "HTTP 500" in msg and "4 attempts" in msg
    assert ei.value.attempts == 4 and ei.value.retryable
    assert KEY not in msg
    assert len(server.requests) == 4


def test_404_fails_at_once(server):
    server.push(error("openai", 404, "The model `gpt-nope` does not exist"))
    with pytest.raises(ProviderError) as ei:
        provider(server).complete(make_request())
    assert "HTTP 404" in str(ei.value) and "does not exist" in str(ei.value)
    assert len(server.requests) == 1


def test_timeout_fails_quickly(server):
    server.push(*[Reply(body=openai_completion("late"), delay_s=3.0) for _ in range(2)])
    t0 = time.monotonic()
    with pytest.raises(ProviderError) as ei:
        provider(server, max_retries=1, timeout_s=0.2).complete(make_request())
    assert time.monotonic() - t0 < 2.0
    assert "timed out after 0.2s" in str(ei.value) and "2 attempts" in str(ei.value)


def test_connection_refused_is_retried_then_reported():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    p = OpenAIProvider(
        "gpt-test-model", api_key=KEY, base_url=f"http://127.0.0.1:{port}/v1", timeout_s=2, max_retries=1
    )
    with pytest.raises(ProviderError) as ei:
        p.complete(make_request())
    assert "connection failed" in str(ei.value) and "2 attempts" in str(ei.value)


def test_base_url_from_environment(server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    server.push(Reply(body=openai_completion("via env")))
    p = OpenAIProvider("gpt-test-model", api_key=KEY, timeout_s=5, max_retries=0)
    assert p.complete(make_request()).text == "via env"


def test_post_and_create_send_the_same_request(server):
    """The default path (client.post, no SDK param transform) and chat.completions.create put
    the same JSON on the wire."""
    convo = (
        Message("user", "Review the rollout plan."),
        Message("assistant", "Checking.", tool_calls=(ToolCall("call_a", "read_metrics", {"stage": "shadow"}),)),
        Message("tool", "ok", tool_call_id="call_a", name="read_metrics"),
        Message("tool", "bad", tool_call_id="call_b", name="read_metrics", is_error=True),
    )
    req = make_request(*convo, tools=[metrics_tool()])
    bodies, headers = [], []
    for use_create in (False, True):
        server.clear()
        server.push(Reply(body=openai_completion("ok")))
        p = provider(server)
        p.use_create = use_create
        assert p.complete(req).text == "ok"
        bodies.append(server.requests[0].json)
        headers.append(server.requests[0].header("authorization"))
    assert bodies[0] == bodies[1]
    assert headers[0] == headers[1] == f"Bearer {KEY}"
