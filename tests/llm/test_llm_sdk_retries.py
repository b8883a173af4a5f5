"""Who retries, and what happens when retrying is not enough: per SDK, against loopback servers.

OpenAI and Anthropic retry in their SDK (``x-should-retry``, ``Retry-After``); Gemini under our
policy (``Retry-After`` / ``RetryInfo``). A provider that stays unavailable, or asks to wait too
long, fails over along the agent's chain (model -> fallback_model -> offline), recorded in the
ledger as a ``failover`` downgrade with the redacted reason.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from llm_servers import (  # noqa: E402
    LLMServer,
    Reply,
    Sleeps,
    anthropic_message,
    error,
    fake_offline,
    gemini_response,
    make_request,
    openai_completion,
)

from cvagents.config import AgentConfig, CallDefaults  # noqa: E402
from cvagents.llm.base import ProviderError  # noqa: E402
from cvagents.llm.cost import FAILOVER, CostLedger  # noqa: E402
from cvagents.llm.factory import build_provider  # noqa: E402

KEYS = {
    "ANTHROPIC_API_KEY": "sk-ant-test-retries-0123456789",
    "OPENAI_API_KEY": "sk-test-retries-0123456789",
    "GOOGLE_API_KEY": "AIzaTestRetries0123456789",
}
KEY_OF = {"anthropic": KEYS["ANTHROPIC_API_KEY"], "openai": KEYS["OPENAI_API_KEY"], "gemini": KEYS["GOOGLE_API_KEY"]}
MODEL = {"anthropic": "claude-main", "openai": "gpt-main", "gemini": "gemini-main"}
FALLBACK = {"anthropic": "claude-small", "openai": "gpt-small", "gemini": "gemini-small"}
SDK_RETRIES = ("anthropic", "openai")


def ok(kind: str, text: str) -> Reply:
    body = {
        "anthropic": lambda: anthropic_message(text),
        "openai": lambda: openai_completion(text),
        "gemini": lambda: gemini_response(text),
    }[kind]()
    return Reply(body=body)


def long_wait(kind: str) -> Reply:
    """429 asking to wait five minutes: Retry-After, and for Gemini its RetryInfo too."""
    reply = error(kind, 429, f"quota exhausted for {KEY_OF[kind]}", headers={"Retry-After": "300"})
    if kind == "gemini":
        reply.body["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "300s"}]
        reply.headers = {}
    return reply


def managed(kind: str, srv: LLMServer, ledger: CostLedger | None = None, *, max_retries: int = 2, sleeps=None):
    cfg = AgentConfig(
        team="planning",
        role="critic",
        provider=kind,
        model=MODEL[kind],
        fallback_model=FALLBACK[kind],
        prompt="prompts/planning_team/critic.md",
        base_url=srv.base_url,
        max_retries=max_retries,
        timeout_s=5,
    )
    return build_provider(
        "critic",
        cfg,
        CallDefaults(),
        keys=KEYS,
        ledger=ledger,
        offline_provider=fake_offline(),
        retry_sleep=sleeps if sleeps is not None else Sleeps(),
    )


def models_asked(srv: LLMServer, kind: str) -> list[str]:
    if kind == "gemini":
        return [r.path.split("/models/")[1].split(":")[0] for r in srv.requests]
    return [r.json["model"] for r in srv.requests]


@pytest.mark.parametrize("kind", SDK_RETRIES)
def test_x_should_retry_false_means_one_attempt(kind):
    with LLMServer(kind) as srv:
        srv.push(error(kind, 503, "overloaded", headers={"x-should-retry": "false"}))
        p = managed(kind, srv, max_retries=4).chain[0]
        with pytest.raises(ProviderError) as ei:
            p.complete(make_request())
        assert len(srv.requests) == 1
        assert ei.value.attempts == 1 and "HTTP 503" in str(ei.value)


@pytest.mark.parametrize("kind", SDK_RETRIES)
def test_retry_after_is_honoured_by_the_sdk(kind):
    with LLMServer(kind) as srv:
        srv.push(error(kind, 429, "slow down", headers={"Retry-After": "2"}), ok(kind, "fine now"))
        p = managed(kind, srv, max_retries=1).chain[0]
        assert p.complete(make_request()).text == "fine now"
        first, second = srv.requests
        # the SDK's own backoff for a first retry is at most 0.5 s: a wait of 2 s is the header's
        assert second.at - first.at >= 1.9
        assert second.header("x-stainless-retry-count") == "1"


def test_gemini_retry_info_is_honoured_by_our_policy():
    sleeps = Sleeps()
    with LLMServer("gemini") as srv:
        busy = error("gemini", 429, "slow down")
        busy.body["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]
        srv.push(busy, ok("gemini", "fine now"))
        p = managed("gemini", srv, sleeps=sleeps).chain[0]
        assert p.complete(make_request()).text == "fine now"
    assert sleeps == [7.0] and len(srv.requests) == 2


@pytest.mark.parametrize("kind", ("anthropic", "openai", "gemini"))
def test_a_long_retry_after_fails_over_to_the_fallback_model_then_offline(kind):
    ledger = CostLedger(today=lambda: "d")
    sleeps = Sleeps()
    with LLMServer(kind) as srv:
        srv.push(long_wait(kind), long_wait(kind))
        p = managed(kind, srv, ledger, sleeps=sleeps)
        with ledger.meeting("m-1"):
            res = p.complete(make_request())
            assert res.text == "offline answer"
            assert models_asked(srv, kind) == [MODEL[kind], FALLBACK[kind]]  # one attempt each: no 5-minute wait
            assert sleeps == []
            # told to wait five minutes: the next call does not ask either model again
            assert p.complete(make_request()).text == "offline answer"
            assert len(srv.requests) == 2
    failovers = [d for d in ledger.downgrades() if d.budget == FAILOVER]
    assert [(d.from_model, d.to_model) for d in failovers[:2]] == [
        (MODEL[kind], FALLBACK[kind]),
        (FALLBACK[kind], "offline-rules-v1"),
    ]
    assert len(failovers) == 4 and all(d.meeting_id == "m-1" for d in failovers)
    assert "HTTP 429" in failovers[0].reason and "300s" in failovers[0].reason
    assert all(KEY_OF[kind] not in d.reason for d in failovers)
    summary = ledger.downgrade_summary(meeting_id="m-1")
    assert any(line.startswith("Failover: ") and "HTTP 429" in line for line in summary), summary


@pytest.mark.parametrize("kind", ("anthropic", "openai", "gemini"))
def test_a_repeated_500_is_retried_then_fails_over(kind):
    ledger = CostLedger(today=lambda: "d")
    sleeps = Sleeps()
    with LLMServer(kind) as srv:
        fast = {"retry-after-ms": "1"} if kind in SDK_RETRIES else {}
        srv.push(*[error(kind, 500, "internal trouble", headers=fast) for _ in range(3)], ok(kind, "from the fallback"))
        p = managed(kind, srv, ledger, max_retries=2, sleeps=sleeps)
        assert p.complete(make_request()).text == "from the fallback"
        assert models_asked(srv, kind) == [MODEL[kind]] * 3 + [FALLBACK[kind]]
    if kind in SDK_RETRIES:
        assert [r.header("x-stainless-retry-count") for r in srv.requests[:3]] == ["0", "1", "2"]
        assert sleeps == []  # the SDK waited, not our policy
    else:
        assert len(sleeps) == 2
    (d,) = ledger.downgrades()
    assert (d.budget, d.from_model, d.to_model) == (FAILOVER, MODEL[kind], FALLBACK[kind])
    assert "HTTP 500" in d.reason and "3 attempts" in d.reason
    (call,) = ledger.calls()
    assert call.model == FALLBACK[kind]


@pytest.mark.parametrize("kind", ("anthropic", "openai", "gemini"))
def test_a_refused_request_does_not_fail_over(kind):
    ledger = CostLedger(today=lambda: "d")
    with LLMServer(kind) as srv:
        srv.push(error(kind, 400, "messages: field required"))
        p = managed(kind, srv, ledger)
        with pytest.raises(ProviderError, match="HTTP 400"):
            p.complete(make_request())
        assert len(srv.requests) == 1
    assert ledger.downgrades() == [] and ledger.calls() == []
