"""Cost arithmetic, the ledger, and budgets that downgrade calls instead of passing them."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from llm_servers import LLMServer, Reply, Sleeps, error, fake_offline, make_request, openai_completion  # noqa: E402

from cvagents.config import AgentConfig, Budgets, CallDefaults, Price  # noqa: E402
from cvagents.llm.base import Message, ProviderError, Usage  # noqa: E402
from cvagents.llm.call_cost import CallCost, call_cost_usd, estimate_call_usd
from cvagents.llm.cost import PER_DAY, PER_MEETING, CostLedger, Reservation
from cvagents.llm.factory import build_provider  # noqa: E402

PRICING = {
    "claude-sonnet": Price(input=3.0, output=15.0, cached_input=0.3),
    "gpt-4-turbo": Price(input=10.0, output=30.0),
    "gpt-big": Price(input=1000.0, output=1000.0),
    "gpt-small": Price(input=10.0, output=10.0),
    "offline-rules-v1": Price(input=0.0, output=0.0),
}


# ---------------------------------------------------------------------------- arithmetic


def test_call_cost_with_cached_tokens():
    usage = Usage(input_tokens=10_000, output_tokens=2_000, cached_tokens=4_000)
    cost = call_cost_usd("claude-sonnet", usage, PRICING)
    assert cost == pytest.approx((6_000 * 3.0 + 4_000 * 0.3 + 2_000 * 15.0) / 1e6)
    assert isinstance(cost, float) and cost.priced


def test_cached_price_not_given_charges_full_input():
    usage = Usage(input_tokens=1_000, output_tokens=0, cached_tokens=800)
    assert call_cost_usd("gpt-4-turbo", usage, PRICING) == pytest.approx(1_000 * 10.0 / 1e6)


def test_unknown_model_costs_zero_and_is_flagged():
    cost = call_cost_usd("mystery-model", Usage(1000, 1000, 0), PRICING)
    assert cost == 0.0 and cost.priced is False and isinstance(cost, CallCost)


def test_dated_model_names_find_their_price():
    assert call_cost_usd("gpt-4-turbo-2024-04-09", Usage(1_000_000, 0, 0), PRICING) == pytest.approx(10.0)
    assert call_cost_usd("models/claude-sonnet", Usage(0, 1_000_000, 0), PRICING) == pytest.approx(15.0)


def test_estimate_is_chars_over_four_plus_max_tokens():
    req = make_request(Message("user", "u" * 400), system="s" * 400, max_tokens=100)
    assert estimate_call_usd("gpt-4-turbo", req, PRICING) == pytest.approx((200 * 10.0 + 100 * 30.0) / 1e6)
    assert estimate_call_usd("gpt-4-turbo", req, PRICING, max_tokens=10) == pytest.approx(
        (200 * 10.0 + 10 * 30.0) / 1e6
    )
    assert estimate_call_usd("mystery", req, PRICING) == 0.0


# -------------------------------------------------------------------------------- ledger


def test_ledger_totals_per_agent_meeting_and_day():
    ledger = CostLedger(today=lambda: "2030-01-01")
    u = Usage(1_000_000, 0, 0)  # $10 on gpt-4-turbo
    ledger.record_call(
        agent="critic", provider="openai", model="gpt-4-turbo", usage=u, pricing=PRICING, meeting_id="m1"
    )
    ledger.record_call(
        agent="critic", provider="openai", model="gpt-4-turbo", usage=u, pricing=PRICING, meeting_id="m2"
    )
    ledger.record_call(
        agent="ops_commander", provider="openai", model="gpt-4-turbo", usage=u, pricing=PRICING, day="2030-01-02"
    )
    assert ledger.totals_by_agent() == pytest.approx({"critic": 20.0, "ops_commander": 10.0})
    assert ledger.totals_by_meeting() == pytest.approx({"m1": 10.0, "m2": 10.0})
    assert ledger.totals_by_day() == pytest.approx({"2030-01-01": 20.0, "2030-01-02": 10.0})
    assert ledger.spent(agent="critic") == pytest.approx(20.0)
    assert ledger.spent() == pytest.approx(30.0)
    assert ledger.usage_by_agent()["critic"] == Usage(2_000_000, 0, 0)
    rec = ledger.calls(meeting_id="m1")[0]
    assert (rec.agent, rec.provider, rec.model, rec.day) == ("critic", "openai", "gpt-4-turbo", "2030-01-01")
    assert rec.as_dict()["usage"] == {
        "input_tokens": 1_000_000,
        "output_tokens": 0,
        "cached_tokens": 0,
        "cache_write_tokens": 0,
    }


def test_unpriced_models_are_listed_and_logged(caplog):
    ledger = CostLedger()
    with caplog.at_level(logging.WARNING):
        rec = ledger.record_call(agent="a", provider="openai", model="llama3:8b", usage=Usage(10, 10), pricing=PRICING)
    assert rec.cost_usd == 0.0 and rec.priced is False
    assert ledger.unpriced_models() == ["llama3:8b"]
    assert "llama3:8b" in caplog.text


def test_would_exceed_names_the_budget():
    ledger = CostLedger(Budgets(per_meeting_usd=1.0, per_day_usd=3.0), today=lambda: "d1")
    assert ledger.would_exceed(0.5, "m1", "d1") is None
    ledger.record_call(agent="a", provider="p", model="m", usage=Usage(), cost_usd=0.8, meeting_id="m1")
    assert ledger.would_exceed(0.3, "m1", "d1") == PER_MEETING
    assert ledger.would_exceed(0.2, "m1", "d1") is None  # exactly at the budget is allowed
    ledger.record_call(agent="a", provider="p", model="m", usage=Usage(), cost_usd=1.0, meeting_id="m2")
    ledger.record_call(agent="a", provider="p", model="m", usage=Usage(), cost_usd=1.0, meeting_id="m3")
    assert ledger.would_exceed(0.5, "m4", "d1") == PER_DAY
    assert ledger.would_exceed(0.5, None, "d1") == PER_DAY  # executive calls: the day budget only
    assert ledger.would_exceed(0.5, None, "d2") is None
    assert CostLedger().would_exceed(1e9, "m", "d") is None  # no budgets, no limit


def test_reservations_hold_budget_for_calls_in_flight():
    ledger = CostLedger(Budgets(per_meeting_usd=1.0), today=lambda: "d")
    results = []
    lock = threading.Lock()

    def worker():
        r = ledger.reserve(0.05, "m", "d")
        with lock:
            results.append(r)

    threads = [threading.Thread(target=worker) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    held = [r for r in results if isinstance(r, Reservation)]
    assert len(held) == 20 and results.count(PER_MEETING) == 80
    for r in held:
        ledger.release(r)
    assert ledger.would_exceed(1.0, "m", "d") is None


def test_ledger_is_thread_safe():
    ledger = CostLedger(today=lambda: "d")

    def worker(i):
        for _ in range(500):
            ledger.record_call(
                agent=f"a{i % 4}", provider="p", model="m", usage=Usage(1, 1), cost_usd=0.001, meeting_id="m"
            )

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ledger.n_calls == 8000
    assert ledger.spent(meeting_id="m") == pytest.approx(8.0)
    assert sum(ledger.totals_by_agent().values()) == pytest.approx(8.0)
    assert ledger.usage_by_agent()["a0"] == Usage(2000, 2000, 0)


def test_snapshot_restore_carries_spend_across_restart():
    a = CostLedger(today=lambda: "d")
    a.record_call(agent="x", provider="p", model="m", usage=Usage(), cost_usd=1.25, meeting_id="m1")
    b = CostLedger(Budgets(per_day_usd=2.0), today=lambda: "d")
    b.restore(a.snapshot())
    assert b.spent(day="d") == pytest.approx(1.25)
    assert b.would_exceed(1.0, None, "d") == PER_DAY


# ------------------------------------------------------------------- budgets in the factory


def agent(model="gpt-big", fallback="gpt-small", **kw):
    return AgentConfig(
        team="planning",
        role="critic",
        provider="openai",
        model=model,
        fallback_model=fallback,
        prompt="prompts/x.md",
        **kw,
    )


def test_tiny_budget_drops_to_fallback_then_offline():
    budget = 0.01
    ledger = CostLedger(Budgets(per_meeting_usd=budget), today=lambda: "2030-01-01")
    offline = fake_offline()
    with LLMServer(
        "openai", default=Reply(body=openai_completion("ok", prompt_tokens=16, completion_tokens=50))
    ) as srv:
        p = build_provider(
            "critic",
            agent(base_url=srv.base_url),
            CallDefaults(max_tokens=100),
            keys={"OPENAI_API_KEY": "sk-test-budget-0123456789"},
            ledger=ledger,
            pricing=PRICING,
            offline_provider=offline,
            retry_sleep=Sleeps(),
        )
        providers = []
        with ledger.meeting("m-0001"):
            for _ in range(20):
                providers.append(p.complete(make_request(system="s" * 40, max_tokens=500)).provider)
        models_called = [r.json["model"] for r in srv.requests]

    assert "gpt-big" not in models_called  # never made: its worst case passes the budget
    assert models_called and set(models_called) == {"gpt-small"}
    assert providers[: len(models_called)] == ["openai"] * len(models_called)
    assert providers[len(models_called) :] == ["offline"] * (20 - len(models_called)) and len(offline.requests) > 0
    assert ledger.spent(meeting_id="m-0001") <= budget
    assert len(ledger.calls(meeting_id="m-0001")) == 20  # offline calls are recorded too, at $0
    assert {c.cost_usd for c in ledger.calls() if c.provider == "offline"} == {0.0}

    steps = {(d.agent, d.from_model, d.to_model, d.budget) for d in ledger.downgrades(meeting_id="m-0001")}
    assert steps == {
        ("critic", "gpt-big", "gpt-small", PER_MEETING),
        ("critic", "gpt-small", "offline-rules-v1", PER_MEETING),
    }
    summary = ledger.downgrade_summary(meeting_id="m-0001")
    assert any(line.startswith("Budget downgrade: critic: gpt-big -> gpt-small (per_meeting_usd") for line in summary)
    assert any("gpt-small -> offline-rules-v1" in line for line in summary)


def test_day_budget_applies_without_a_meeting_and_no_call_is_made():
    ledger = CostLedger(Budgets(per_day_usd=0.0), today=lambda: "2030-01-01")
    offline = fake_offline()
    with LLMServer("openai") as srv:
        p = build_provider(
            "ops_commander",
            agent(base_url=srv.base_url),
            CallDefaults(),
            keys={"OPENAI_API_KEY": "sk-test-budget-0123456789"},
            ledger=ledger,
            pricing=PRICING,
            offline_provider=offline,
        )
        res = p.complete(make_request())
        assert srv.requests == []
    assert res.provider == "offline"
    assert [d.budget for d in ledger.downgrades()] == [PER_DAY, PER_DAY]
    assert ledger.spent(day="2030-01-01") == 0.0


def test_meeting_from_request_context():
    ledger = CostLedger(Budgets(per_meeting_usd=0.0), today=lambda: "d")
    p = build_provider(
        "critic",
        agent(fallback=None, base_url="http://127.0.0.1:9/v1"),
        CallDefaults(),
        keys={},
        ledger=ledger,
        pricing=PRICING,
        offline_provider=fake_offline(),
    )
    res = p.complete(make_request(context={"meeting_id": "m-ctx"}))
    assert res.provider == "offline"
    (d,) = ledger.downgrades()
    assert (d.meeting_id, d.from_model, d.to_model, d.budget) == ("m-ctx", "gpt-big", "offline-rules-v1", PER_MEETING)


def test_failed_call_releases_its_reservation():
    ledger = CostLedger(Budgets(per_meeting_usd=1.0), today=lambda: "d")
    with LLMServer("openai") as srv:
        srv.push(error("openai", 400, "bad request"))
        p = build_provider(
            "critic",
            agent(model="gpt-small", fallback=None, base_url=srv.base_url),
            CallDefaults(),
            keys={"OPENAI_API_KEY": "sk-test-budget-0123456789"},
            ledger=ledger,
            pricing=PRICING,
            offline_provider=fake_offline(),
        )
        with ledger.meeting("m1"), pytest.raises(ProviderError):
            p.complete(make_request())
    assert ledger.would_exceed(1.0, "m1", "d") is None
    assert ledger.calls() == []


def test_real_call_cost_is_recorded():
    ledger = CostLedger(today=lambda: "d")
    with LLMServer("openai") as srv:
        srv.push(
            Reply(
                body=openai_completion("ok", model="gpt-4-turbo-2024-04-09", prompt_tokens=1000, completion_tokens=100)
            )
        )
        p = build_provider(
            "critic",
            agent(model="gpt-4-turbo", fallback=None, base_url=srv.base_url),
            CallDefaults(),
            keys={"OPENAI_API_KEY": "sk-test-budget-0123456789"},
            ledger=ledger,
            pricing=PRICING,
            offline_provider=fake_offline(),
        )
        p.complete(make_request())
    (rec,) = ledger.calls()
    assert (rec.agent, rec.provider, rec.model) == ("critic", "openai", "gpt-4-turbo")
    assert rec.cost_usd == pytest.approx((1000 * 10.0 + 100 * 30.0) / 1e6)
