"""Prices: the genai-prices list, the meeting.yaml override, cache reads and writes, micro-dollars,
and a budget that an unpriced model would slip past."""

import logging

import pytest
import yaml

from cvagents.config import ConfigError, Price, load_meeting_config
from cvagents.config.prices import list_price, price_for
from cvagents.llm.base import Usage
from cvagents.llm.call_cost import call_cost_usd
from cvagents.llm.cost import CostLedger

SONNET = "claude-sonnet-4-20250514"


def test_a_known_model_is_priced_from_the_maintained_list():
    p = list_price(SONNET, "anthropic")
    assert (p.input, p.output, p.cached_input, p.cache_write_input) == (3.0, 15.0, 0.3, 3.75)
    gemini = price_for("models/gemini-2.0-flash", {}, "gemini")
    assert (gemini.input, gemini.output, gemini.cached_input) == (0.1, 0.4, 0.025)
    assert list_price("my-local-llama-7b", "openai") is None


def test_the_configured_price_wins_over_the_list():
    pricing = {SONNET: Price(input=1.0, output=2.0)}
    assert price_for(SONNET, pricing, "anthropic") is pricing[SONNET]
    cost = call_cost_usd(SONNET, Usage(input_tokens=1_000_000, output_tokens=1_000_000), pricing, "anthropic")
    assert float(cost) == 3.0 and cost.priced


def test_anthropic_cache_writes_cost_more_and_reads_less_than_input():
    # 1M prompt tokens: 200k uncached, 300k written to the cache, 500k read from it; 100k out
    u = Usage(input_tokens=1_000_000, output_tokens=100_000, cached_tokens=500_000, cache_write_tokens=300_000)
    cost = call_cost_usd(SONNET, u, {}, "anthropic")
    # 0.2 * 3 + 0.3 * 3.75 (1.25x) + 0.5 * 0.3 (0.1x) + 0.1 * 15
    assert float(cost) == pytest.approx(0.6 + 1.125 + 0.15 + 1.5, abs=1e-9)
    # what the cached tokens would have cost at 3/M, less what they cost: reads save, writes add
    assert cost.saved == pytest.approx(0.5 * (3 - 0.3) - 0.3 * (3.75 - 3), abs=1e-9)
    # a price without cache prices charges both at input: a budget errs on the safe side
    flat = call_cost_usd("m", u, {"m": Price(input=3.0, output=15.0)})
    assert float(flat) == pytest.approx(3.0 + 1.5) and flat.saved == 0.0


def test_amounts_are_rounded_to_the_micro_dollar():
    cost = call_cost_usd("gpt-4o-mini", Usage(input_tokens=7, output_tokens=3), {}, "openai")
    assert float(cost) == 0.000003  # 7 * 0.15e-6 + 3 * 0.6e-6 = 2.85e-6
    ledger = CostLedger()
    for _ in range(3):
        ledger.record_call(agent="a", provider="openai", model="gpt-4o-mini", usage=Usage(7, 3), meeting_id="m1")
    assert ledger.spent() == 0.000009 and ledger.spent(meeting_id="m1") == 0.000009
    assert ledger.record_call(agent="a", provider="x", model="y", usage=Usage(), cost_usd=0.1 + 0.2).cost_usd == 0.3


def _meeting_yaml(tmp_path, project_root, *, model, budgets, pricing=None):
    src = project_root / "configs" / "meeting.yaml"
    raw = yaml.safe_load(src.read_text())
    raw["agents"]["critic"]["model"] = model
    raw["agents"]["critic"]["fallback_model"] = None
    raw["budgets"] = budgets
    raw["pricing"] = pricing or {}
    path = tmp_path / "meeting.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_an_unpriced_model_with_a_budget_is_a_config_error(tmp_path, project_root):
    path = _meeting_yaml(tmp_path, project_root, model="my-local-llama-7b", budgets={"per_day_usd": 5.0})
    with pytest.raises(ConfigError) as e:
        load_meeting_config(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: agents.critic: model 'my-local-llama-7b': no price")
    assert "\n" not in msg
    # priced at 0 explicitly, a local model is fine
    path = _meeting_yaml(
        tmp_path,
        project_root,
        model="my-local-llama-7b",
        budgets={"per_day_usd": 5.0},
        pricing={"my-local-llama-7b": {"input": 0.0, "output": 0.0}},
    )
    assert load_meeting_config(path).agents["critic"].model == "my-local-llama-7b"


def test_an_unpriced_model_without_a_budget_only_warns(tmp_path, project_root, caplog):
    path = _meeting_yaml(tmp_path, project_root, model="my-local-llama-7b", budgets={})
    cfg = load_meeting_config(path)
    ledger = CostLedger(cfg.budgets)
    with caplog.at_level(logging.WARNING, logger="cvagents.llm.cost"):
        rec = ledger.record_call(agent="critic", provider="openai", model="my-local-llama-7b", usage=Usage(100, 10))
    assert (rec.cost_usd, rec.priced) == (0.0, False)
    assert "no price for model 'my-local-llama-7b'" in caplog.text
    assert ledger.unpriced_models() == ["my-local-llama-7b"]


def test_the_shipped_config_is_priced_without_a_table(project_root):
    cfg = load_meeting_config(project_root / "configs" / "meeting.yaml")
    assert cfg.pricing == {} and cfg.budgets.per_day_usd is not None  # every model priced from the list


PROBE_PRICE = """
import json, sys
from cvagents.config.prices import list_price
p = list_price("claude-sonnet-4-20250514", "anthropic")
print(json.dumps([p and p.model_dump(), list_price("my-local-llama-7b", "openai"), "genai_prices" in sys.modules]))
"""


def _fresh_lookup(cache_home):
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    out = subprocess.run([sys.executable, "-c", PROBE_PRICE], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_list_prices_are_kept_for_the_next_start_up_of_the_same_table(tmp_path):
    import json

    from cvagents.config import prices

    first = _fresh_lookup(tmp_path)
    assert first[2] is True  # looked up in genai-prices
    again = _fresh_lookup(tmp_path)
    assert again == [first[0], None, False]  # the same prices (and the same "none"), table not imported
    assert first[0] == {"input": 3.0, "output": 15.0, "cached_input": 0.3, "cache_write_input": 3.75}
    # another table (a genai-prices upgrade) or another day: looked up again, and kept anew
    kept = tmp_path / "cvagents" / "list_prices.json"
    saved = json.loads(kept.read_text())
    kept.write_text(
        json.dumps({**saved, "table": "an older table", "prices": {"anthropic|claude-sonnet-4-20250514": [9, 9, 9, 9]}})
    )
    assert _fresh_lookup(tmp_path) == [first[0], None, True]
    assert json.loads(kept.read_text())["table"] == saved["table"] == prices._table_identity()


def test_an_unwritable_price_cache_only_costs_the_lookup(tmp_path, monkeypatch):
    from cvagents.config import prices

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    prices.list_price.cache_clear()
    try:
        p = prices.list_price(SONNET, "anthropic")
    finally:
        prices.list_price.cache_clear()
    assert (p.input, p.output) == (3.0, 15.0)
    assert not (blocker / "cvagents").exists() and list(tmp_path.iterdir()) == [blocker]
