"""The price of a model: ``meeting.yaml`` ``pricing`` first, else the maintained list of
``genai-prices``.

Prices are USD per million tokens (``Price``: ``input``, ``output``, ``cached_input`` for cache
reads, ``cache_write_input`` for cache writes). ``genai-prices`` is imported on the first model
that the override does not price (its table costs ~0.3 s and ~20 MiB to import), so a run whose
models are all priced in ``meeting.yaml``, or that is offline, never loads it. Where the list prices a model
in tiers (Anthropic above 200k prompt tokens), the base tier is taken: our prompts stay far below.

What the list said is kept in ``$XDG_CACHE_HOME/cvagents/list_prices.json`` (else
``~/.cache/...``) for the installed table (its ``data.py``: path, size, mtime) and the UTC day,
so the next start-up with the same models reads a few lines instead of importing the table;
another genai-prices version, or another day, looks them up again.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
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


_PRICE_FIELDS = ("input", "output", "cached_input", "cache_write_input")
_cache_lock = threading.Lock()


def cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cvagents" / "list_prices.json"


def _table_identity() -> str | None:
    """The installed genai-prices table (found without importing it), with the UTC day."""
    spec = importlib.util.find_spec("genai_prices")
    if spec is None or not spec.submodule_search_locations:
        return None
    data = Path(next(iter(spec.submodule_search_locations))) / "data.py"
    try:
        st = data.stat()
    except OSError:
        return None
    return f"{data}:{st.st_size}:{st.st_mtime_ns}:{datetime.now(UTC).date()}"


def _read_cache(identity: str) -> dict[str, Any]:
    try:
        saved = json.loads(cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return saved.get("prices", {}) if isinstance(saved, dict) and saved.get("table") == identity else {}


def _write_cache(identity: str, key: str, value: list[float] | None) -> None:
    """Add one lookup (atomically replaced; a cache that cannot be written is only slower)."""
    path = cache_file()
    with _cache_lock:
        prices = _read_cache(identity)
        prices[key] = value
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"table": identity, "prices": prices}), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()


@functools.lru_cache(maxsize=256)
def list_price(model: str, provider: str | None = None) -> Price | None:
    """``model``'s list price from ``genai-prices`` (None when it has none). ``provider``: ours
    (``anthropic`` / ``openai`` / ``gemini``) narrows the search; other names search every provider."""
    if not model:
        return None
    identity = _table_identity()
    key = f"{provider or ''}|{model}"
    if identity is not None:
        saved = _read_cache(identity)
        if key in saved:
            values = saved[key]
            return None if values is None else Price(**dict(zip(_PRICE_FIELDS, values, strict=True)))
    price = _look_up(model, provider)
    if identity is not None:
        _write_cache(identity, key, None if price is None else [getattr(price, f) for f in _PRICE_FIELDS])
    return price


def _look_up(model: str, provider: str | None) -> Price | None:
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
