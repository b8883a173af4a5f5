"""The price of a model: ``meeting.yaml`` ``pricing`` first, else the maintained list of
``genai-prices``.

Prices are USD per million tokens (``Price``: ``input``, ``output``, ``cached_input`` for cache
reads, ``cache_write_input`` for cache writes). ``genai-prices`` is imported on the first model
that the override does not price (its table takes ~0.4 s to import), so a run whose models are
all priced in ``meeting.yaml``, or that is offline, never loads it. Where the list prices a model
in tiers (Anthropic above 200k prompt tokens), the base tier is taken: our prompts stay far below.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cvagents.config.meeting import MeetingConfig, Price

# our provider names -> genai-prices provider ids
_LIST_PROVIDER = {"anthropic": "anthropic", "openai": "openai", "gemini": "google"}


def bare_model(model: str) -> str:
    return model.split("/", 1)[1] if model.startswith("models/") else model


def override_price(model: str, pricing: Mapping[str, Any] | None) -> Any | None:
    """The configured price of ``model``: an exact key, else ``models/``-less, else the longest key
    the model name starts with (``gpt-4-turbo-2024-04-09`` -> ``gpt-4-turbo``)."""
    if not pricing or not model:
        return None
    if model in pricing:
        return pricing[model]
    bare = bare_model(model)
    if bare in pricing:
        return pricing[bare]
    best = None
    for key in pricing:
        if bare.startswith(key) and (best is None or len(key) > len(best)):
            best = key
    return pricing[best] if best is not None else None


def _per_mtok(value: Any) -> float:
    if value is None:
        return 0.0
    base = getattr(value, "base", value)  # TieredPrices -> its base tier
    return float(base)


@functools.lru_cache(maxsize=256)
def list_price(model: str, provider: str | None = None) -> Price | None:
    """``model``'s list price from ``genai-prices`` (None when it has none). ``provider``: ours
    (``anthropic`` / ``openai`` / ``gemini``) narrows the search; other names search every provider."""
    if not model:
        return None
    from genai_prices import data_snapshot  # lazy: see the module docstring

    try:
        _, info = data_snapshot.get_snapshot().find_provider_model(
            bare_model(model), None, _LIST_PROVIDER.get(provider or ""), None
        )
    except LookupError:
        return None
    p = info.get_prices(datetime.now(UTC))
    if getattr(p, "input_mtok", None) is None and getattr(p, "output_mtok", None) is None:
        return None
    return Price(
        input=_per_mtok(getattr(p, "input_mtok", None)),
        output=_per_mtok(getattr(p, "output_mtok", None)),
        cached_input=_per_mtok(getattr(p, "cache_read_mtok", None)),
        cache_write_input=_per_mtok(getattr(p, "cache_write_mtok", None)),
    )


def price_for(model: str, pricing: Mapping[str, Any] | None, provider: str | None = None) -> Any | None:
    """What ``model`` costs: the ``pricing`` override, else its list price, else None."""
    found = override_price(model, pricing)
    if found is not None:
        return found
    if provider == "offline":
        return None
    return list_price(model, provider)


def unpriced_agents(cfg: MeetingConfig) -> list[tuple[str, str]]:
    """(agent, model) for each model an agent may call (its model and fallback) that has no price
    anywhere. The offline provider costs nothing and needs none."""
    out: list[tuple[str, str]] = []
    for name, agent in cfg.agents.items():
        if agent.provider == "offline":
            continue
        for model in (agent.model, agent.fallback_model):
            if model and price_for(model, cfg.pricing, agent.provider) is None:
                out.append((name, model))
    return out


def has_budget(cfg: MeetingConfig) -> bool:
    return cfg.budgets.per_meeting_usd is not None or cfg.budgets.per_day_usd is not None
