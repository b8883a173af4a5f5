"""build_provider: the right provider for an agent, offline when there is no key, errors when strict."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from llm_servers import (  # noqa: E402
    LLMServer,
    Reply,
    anthropic_message,
    fake_offline,
    gemini_response,
    make_request,
    openai_completion,
)

from cvagents.config import AgentConfig, CallDefaults, Price  # noqa: E402
from cvagents.llm.anthropic_provider import AnthropicProvider  # noqa: E402
from cvagents.llm.base import Provider, ProviderError  # noqa: E402
from cvagents.llm.cost import CostLedger  # noqa: E402
from cvagents.llm.factory import ManagedProvider, MissingKeyError, build_provider  # noqa: E402
from cvagents.llm.gemini_provider import GeminiProvider  # noqa: E402
from cvagents.llm.openai_provider import OpenAIProvider  # noqa: E402
from cvagents.secrets import KeyStore  # noqa: E402

KEYS = {
    "ANTHROPIC_API_KEY": "sk-ant-test-factory-0123456789",
    "OPENAI_API_KEY": "sk-test-factory-0123456789",
    "GOOGLE_API_KEY": "AIzaTestFactory0123456789",
}
PRICING = {"claude-sonnet": Price(input=3.0, output=15.0), "offline-rules-v1": Price(input=0.0, output=0.0)}


def cfg(provider="anthropic", model="claude-sonnet", fallback="claude-haiku", **kw):
    return AgentConfig(
        team="planning",
        role="Data-driven insights",
        provider=provider,
        model=model,
        fallback_model=fallback,
        prompt="prompts/planning_team/data_analyst.md",
        **kw,
    )


def test_no_key_falls_back_to_offline_with_a_warning(caplog):
    offline, warnings, ledger = fake_offline(), [], CostLedger(today=lambda: "d")
    with caplog.at_level(logging.WARNING, logger="cvagents.llm.factory"):
        p = build_provider(
            "data_analyst",
            cfg(),
            CallDefaults(),
            keys={},
            ledger=ledger,
            pricing=PRICING,
            offline_provider=offline,
            warnings=warnings,
        )
    assert isinstance(p, ManagedProvider) and isinstance(p, Provider)
    assert (p.name, p.model) == ("offline", "offline-rules-v1")
    assert len(warnings) == 1 and warnings == p.warnings
    assert "data_analyst" in warnings[0] and "ANTHROPIC_API_KEY" in warnings[0] and "offline" in warnings[0]
    assert warnings[0] in caplog.text
    res = p.complete(make_request(agent="data_analyst"))
    assert res.text == "offline answer" and len(offline.requests) == 1
    (rec,) = ledger.calls()
    assert (rec.agent, rec.provider, rec.model, rec.cost_usd) == ("data_analyst", "offline", "offline-rules-v1", 0.0)


def test_strict_without_key_is_an_error():
    with pytest.raises(MissingKeyError) as ei:
        build_provider(
            "cotrr_team",
            cfg("gemini", "gemini-2.0-flash", None),
            CallDefaults(),
            keys={},
            strict=True,
            offline_provider=fake_offline(),
        )
    msg = str(ei.value)
    assert isinstance(ei.value, ProviderError)
    assert "cotrr_team" in msg and "gemini" in msg and "GOOGLE_API_KEY or GEMINI_API_KEY" in msg and "--strict" in msg


def test_strict_with_key_builds_the_real_provider():
    p = build_provider("data_analyst", cfg(), CallDefaults(), keys=KEYS, strict=True, offline_provider=fake_offline())
    assert (p.name, p.model) == ("anthropic", "claude-sonnet")
    assert p.warnings == []


def test_offline_mode_ignores_keys():
    offline = fake_offline()
    p = build_provider(
        "critic", cfg("openai", "gpt-4-turbo"), CallDefaults(), mode="offline", keys=KEYS, offline_provider=offline
    )
    assert p.chain == [offline] and p.warnings == []


def test_agent_configured_offline():
    offline = fake_offline()
    p = build_provider(
        "critic",
        cfg("offline", "offline-rules-v1", None),
        CallDefaults(),
        keys={},
        strict=True,
        offline_provider=offline,
    )
    assert p.chain == [offline]


@pytest.mark.parametrize(
    "provider,model,cls",
    [
        ("anthropic", "claude-sonnet", AnthropicProvider),
        ("openai", "gpt-4-turbo", OpenAIProvider),
        ("gemini", "gemini-2.0-flash", GeminiProvider),
    ],
)
def test_chain_is_model_then_fallback_then_offline(provider, model, cls):
    offline = fake_offline()
    p = build_provider("a", cfg(provider, model, "cheap-model"), CallDefaults(), keys=KEYS, offline_provider=offline)
    assert [type(x) for x in p.chain[:2]] == [cls, cls]
    assert [x.model for x in p.chain] == [model, "cheap-model", "offline-rules-v1"]
    assert p.chain[-1] is offline


def test_call_settings_from_agent_then_defaults():
    defaults = CallDefaults(timeout_s=33, max_retries=5, max_tokens=900)
    p = build_provider("a", cfg(timeout_s=7, max_tokens=123), defaults, keys=KEYS, offline_provider=fake_offline())
    first = p.chain[0]
    assert (first.timeout_s, first.max_retries, first.max_tokens_cap) == (7, 5, 123)
    assert first._client.max_retries == 5  # the SDK retries
    assert p.chain[1].timeout_s == 7 and p.chain[1].max_tokens_cap == 123


def test_custom_key_variable():
    keys = {"OPENAI_API_KEY": "sk-wrong-one-0123456789", "TEAM_OPENAI_KEY": "sk-team-key-0123456789"}
    with LLMServer("openai") as srv:
        srv.push(Reply(body=openai_completion("ok")))
        p = build_provider(
            "critic",
            cfg("openai", "gpt-x", None, base_url=srv.base_url, api_key_env="TEAM_OPENAI_KEY"),
            CallDefaults(),
            keys=keys,
            offline_provider=fake_offline(),
        )
        p.complete(make_request())
        assert srv.requests[0].header("authorization") == "Bearer sk-team-key-0123456789"


def test_custom_key_variable_missing_means_offline():
    warnings = []
    p = build_provider(
        "critic",
        cfg(api_key_env="TEAM_ANTHROPIC_KEY"),
        CallDefaults(),
        keys=KEYS,
        offline_provider=fake_offline(),
        warnings=warnings,
    )
    assert p.name == "offline" and "TEAM_ANTHROPIC_KEY" in warnings[0]


def test_local_openai_compatible_server_needs_no_key():
    warnings = []
    with LLMServer("openai") as srv:
        srv.push(Reply(body=openai_completion("hello from a local model", model="llama3.1:8b")))
        p = build_provider(
            "critic",
            cfg("openai", "llama3.1:8b", None, base_url=srv.base_url),
            CallDefaults(),
            keys={},
            strict=True,
            offline_provider=fake_offline(),
            warnings=warnings,
        )
        res = p.complete(make_request())
    assert res.text == "hello from a local model" and res.provider == "openai"
    assert warnings == []


@pytest.mark.parametrize(
    "provider,model,env,body",
    [
        ("anthropic", "claude-sonnet", "ANTHROPIC_BASE_URL", anthropic_message("via keys")),
        ("openai", "gpt-x", "OPENAI_BASE_URL", openai_completion("via keys")),
        ("gemini", "gemini-x", "GOOGLE_GEMINI_BASE_URL", gemini_response("via keys")),
    ],
)
def test_base_url_from_env_or_dotenv(provider, model, env, body, tmp_path):
    kind = provider
    with LLMServer(kind) as srv:
        srv.push(Reply(body=body))
        (tmp_path / ".env").write_text(f"{env}={srv.base_url}\n")
        keys = KeyStore(environ=KEYS, dotenv_path=tmp_path / ".env", colab=False)
        p = build_provider("a", cfg(provider, model, None), CallDefaults(), keys=keys, offline_provider=fake_offline())
        assert p.complete(make_request()).text == "via keys"


def test_default_keystore_reads_the_environment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for n in KEYS:
        monkeypatch.delenv(n, raising=False)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    p = build_provider("a", cfg(), CallDefaults(), offline_provider=fake_offline())
    assert p.name == "offline"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-env-0123456789")
    p = build_provider("a", cfg(), CallDefaults(), offline_provider=fake_offline())
    assert p.name == "anthropic"


def test_every_real_call_is_recorded_with_its_cost():
    ledger = CostLedger(today=lambda: "d")
    with LLMServer("anthropic") as srv:
        srv.push(Reply(body=anthropic_message("ok", model="claude-sonnet", input_tokens=1000, output_tokens=100)))
        p = build_provider(
            "data_analyst",
            cfg(base_url=srv.base_url),
            CallDefaults(),
            keys=KEYS,
            ledger=ledger,
            pricing=PRICING,
            offline_provider=fake_offline(),
        )
        with ledger.meeting("m-7"):
            p.complete(make_request())
    (rec,) = ledger.calls()
    assert (rec.agent, rec.meeting_id, rec.provider, rec.model) == ("data_analyst", "m-7", "anthropic", "claude-sonnet")
    assert rec.usage.input_tokens == 1000 and rec.cost_usd == pytest.approx((1000 * 3 + 100 * 15) / 1e6)


def test_provider_errors_propagate():
    with LLMServer("anthropic") as srv:
        srv.push(
            Reply(
                status=401,
                body={"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}},
            )
        )
        p = build_provider("a", cfg(base_url=srv.base_url), CallDefaults(), keys=KEYS, offline_provider=fake_offline())
        with pytest.raises(ProviderError, match="HTTP 401"):
            p.complete(make_request())


def test_unpriced_model_under_a_budget_is_flagged():
    from cvagents.config import Budgets

    warnings = []
    p = build_provider(
        "critic",
        cfg("openai", "llama3.1:8b", None, base_url="http://127.0.0.1:9/v1"),
        CallDefaults(),
        keys={},
        ledger=CostLedger(Budgets(per_meeting_usd=1.0)),
        pricing=PRICING,
        offline_provider=fake_offline(),
        warnings=warnings,
    )
    assert p.name == "openai"
    assert len(warnings) == 1 and "llama3.1:8b" in warnings[0] and "budgets" in warnings[0]
