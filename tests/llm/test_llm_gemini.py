"""The Gemini provider, through the real google-genai SDK, against a loopback generateContent API."""

from __future__ import annotations

import base64
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from llm_servers import LLMServer, Reply, Sleeps, error, gemini_response, make_request, metrics_tool  # noqa: E402

from cvagents.llm.base import Message, ProviderError, ToolCall  # noqa: E402
from cvagents.llm.gemini_provider import SYNTHETIC_ID_PREFIX, GeminiProvider  # noqa: E402
from cvagents.llm.retry import RetryPolicy  # noqa: E402

KEY = "AIzaTestGemini0123456789abcdef"
MODEL = "gemini-test-model"


@pytest.fixture
def server():
    with LLMServer("gemini") as srv:
        yield srv


def provider(srv, *, max_retries=2, timeout_s=5.0, sleeps=None, max_tokens=None):
    policy = RetryPolicy(max_retries=max_retries, sleep=sleeps if sleeps is not None else Sleeps(), rng=lambda: 0.5)
    return GeminiProvider(
        MODEL, api_key=KEY, base_url=srv.base_url, timeout_s=timeout_s, max_tokens=max_tokens, retry_policy=policy
    )


def test_plain_text(server):
    server.push(Reply(body=gemini_response("Looks sound.", model="gemini-test-model-001")))
    res = provider(server, max_tokens=100).complete(make_request(max_tokens=256))
    assert (res.text, res.provider, res.model, res.stop_reason) == (
        "Looks sound.",
        "gemini",
        "gemini-test-model-001",
        "end_turn",
    )
    (req,) = server.requests
    assert req.path == f"/v1beta/models/{MODEL}:generateContent"
    assert req.header("x-goog-api-key") == KEY
    assert "key=" not in req.path  # the key travels in a header, never in the URL
    body = req.json
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Review the rollout plan."}]}]
    assert body["systemInstruction"]["parts"] == [{"text": "You are the critic."}]
    assert body["generationConfig"]["maxOutputTokens"] == 100


def test_tool_call_round_trip(server):
    sig = base64.b64encode(b"opaque-thought-signature").decode()
    server.push(
        Reply(
            body=gemini_response(
                None,
                function_calls=[
                    ("fc-1", "read_metrics", {"stage": "shadow"}),
                    (None, "read_metrics", {"stage": "bogus"}),
                ],
                thought_signature=sig,
            )
        ),
        Reply(body=gemini_response("Shadow is healthy.")),
    )
    p = provider(server)
    first = p.complete(make_request(tools=[metrics_tool()]))
    assert first.stop_reason == "tool_use"  # Gemini says STOP; calls make it tool_use
    assert first.tool_calls[0] == ToolCall("fc-1", "read_metrics", {"stage": "shadow"})
    synthetic = first.tool_calls[1]
    assert synthetic.id.startswith(SYNTHETIC_ID_PREFIX) and synthetic.arguments == {"stage": "bogus"}

    convo = (
        Message("user", "Review the rollout plan."),
        Message("assistant", "", tool_calls=first.tool_calls),
        Message("tool", '{"ndcg_at_10": 0.74}', tool_call_id="fc-1", name="read_metrics"),
        Message("tool", "unknown stage", tool_call_id=synthetic.id, is_error=True),  # name looked up by id
    )
    second = p.complete(make_request(*convo, tools=[metrics_tool()]))
    assert second.text == "Shadow is healthy." and second.stop_reason == "end_turn"

    decl = server.requests[0].json["tools"][0]["functionDeclarations"][0]
    assert decl["name"] == "read_metrics"
    assert decl["description"] == "Read the latest rollout metrics for a stage."
    schema = decl.get("parametersJsonSchema", decl.get("parameters_json_schema"))
    assert schema == {"type": "object", "properties": {"stage": {"type": "string"}}, "required": ["stage"]}

    contents = server.requests[1].json["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    call_parts = contents[1]["parts"]
    assert call_parts[0]["functionCall"] == {"id": "fc-1", "name": "read_metrics", "args": {"stage": "shadow"}}
    assert call_parts[0]["thoughtSignature"] == sig  # handed back as received
    assert call_parts[1]["functionCall"] == {"name": "read_metrics", "args": {"stage": "bogus"}}  # no made-up id
    assert contents[2]["parts"] == [
        {"functionResponse": {"id": "fc-1", "name": "read_metrics", "response": {"output": '{"ndcg_at_10": 0.74}'}}},
        {"functionResponse": {"name": "read_metrics", "response": {"error": "unknown stage"}}},
    ]


def test_usage_with_cache_and_thoughts(server):
    server.push(
        Reply(
            body=gemini_response(
                "ok", prompt_tokens=3000, candidates_tokens=50, cached_tokens=2048, thoughts_tokens=120
            )
        )
    )
    res = provider(server).complete(make_request())
    assert (res.usage.input_tokens, res.usage.output_tokens, res.usage.cached_tokens) == (3000, 170, 2048)


def test_max_tokens_stop_reason(server):
    server.push(Reply(body=gemini_response("cut", finish_reason="MAX_TOKENS")))
    assert provider(server).complete(make_request()).stop_reason == "max_tokens"


def test_other_finish_reason_passes_through(server):
    server.push(Reply(body=gemini_response("", finish_reason="SAFETY")))
    assert provider(server).complete(make_request()).stop_reason == "SAFETY"


def test_429_with_retry_after_then_success(server):
    sleeps = Sleeps()
    server.push(error("gemini", 429, "quota", headers={"Retry-After": "4"}), Reply(body=gemini_response("fine now")))
    assert provider(server, sleeps=sleeps).complete(make_request()).text == "fine now"
    assert sleeps == [4.0] and len(server.requests) == 2


def test_429_with_retry_info_in_body(server):
    sleeps = Sleeps()
    body = {
        "error": {
            "code": 429,
            "message": "quota exceeded",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}],
        }
    }
    server.push(Reply(status=429, body=body), Reply(body=gemini_response("fine now")))
    assert provider(server, sleeps=sleeps).complete(make_request()).text == "fine now"
    assert sleeps == [7.0]


def test_repeated_500_gives_clear_error(server):
    sleeps = Sleeps()
    server.push(*[error("gemini", 503, "backend unavailable") for _ in range(3)])
    with pytest.raises(ProviderError) as ei:
        provider(server, max_retries=2, sleeps=sleeps).complete(make_request())
    msg = str(ei.value)
    assert "gemini" in msg and MODEL in msg and "HTTP 503" in msg and "3 attempts" in msg
    assert len(server.requests) == 3 and len(sleeps) == 2


def test_403_fails_at_once(server):
    server.push(error("gemini", 403, "permission denied"))
    with pytest.raises(ProviderError) as ei:
        provider(server).complete(make_request())
    assert "HTTP 403" in str(ei.value) and "not retryable" in str(ei.value)
    assert len(server.requests) == 1


def test_timeout_fails_quickly(server):
    server.push(*[Reply(body=gemini_response("late"), delay_s=3.0) for _ in range(2)])
    t0 = time.monotonic()
    with pytest.raises(ProviderError) as ei:
        provider(server, max_retries=1, timeout_s=0.25).complete(make_request())
    assert time.monotonic() - t0 < 2.0
    assert "timed out after 0.25s" in str(ei.value) and "2 attempts" in str(ei.value)


def test_base_url_from_environment(server, monkeypatch):
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", server.base_url)
    server.push(Reply(body=gemini_response("via env")))
    p = GeminiProvider(MODEL, api_key=KEY, timeout_s=5, retry_policy=RetryPolicy(max_retries=0))
    assert p.complete(make_request()).text == "via env"
    assert server.requests[0].path == f"/v1beta/models/{MODEL}:generateContent"
