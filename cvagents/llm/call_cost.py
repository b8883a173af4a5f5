"""What one LLM call costs, and the worst case a call may cost before it is made.

Prices (USD per million tokens) come from ``cvagents.config.prices.price_for``: ``meeting.yaml``
``pricing`` first, else the ``genai-prices`` list. ``Usage.input_tokens`` is the whole prompt;
of it ``cached_tokens`` were read from the provider's prompt cache and ``cache_write_tokens``
written to it, so

    cost = uncached * input + reads * cached_input + writes * cache_write_input + output * output

(Anthropic: a 5-minute cache write costs 1.25x input, a read 0.1x; OpenAI and Gemini discount
reads and charge no writes). A cache price left at 0 charges those tokens at ``input``: a budget
errs on the safe side. ``saved``: what the cached tokens would have cost at ``input`` minus what
they cost (the write premium counts against it). Amounts are rounded to the micro-dollar. A
model without a price costs 0.0 and the result says so (``CallCost.priced is False``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cvagents.config.prices import price_for
from cvagents.llm.base import LLMRequest, Usage

MICRO = 6  # decimals: amounts are kept to the micro-dollar


def usd(value: float) -> float:
    """``value`` rounded to the micro-dollar (and -0.0 made 0.0)."""
    return round(value, MICRO) + 0.0


class CallCost(float):
    """A cost in USD that also says whether the model had a price (``priced``) and what prompt
    caching saved on it (``saved``)."""

    priced: bool
    saved: float

    def __new__(cls, value: float, priced: bool = True, saved: float = 0.0) -> CallCost:
        obj = super().__new__(cls, value)
        obj.priced = priced
        obj.saved = saved
        return obj

    def __repr__(self) -> str:
        return f"CallCost({float(self)!r}, priced={self.priced}, saved={self.saved!r})"


def _get(price: Any, name: str) -> float:
    if isinstance(price, Mapping):
        return float(price.get(name, 0.0) or 0.0)
    return float(getattr(price, name, 0.0) or 0.0)


def call_cost_usd(model: str, usage: Usage, pricing: Mapping[str, Any] | None, provider: str | None = None) -> CallCost:
    """USD for one call, to the micro-dollar. Unknown model -> ``CallCost(0.0, priced=False)``."""
    price = price_for(model, pricing, provider)
    if price is None:
        return CallCost(0.0, priced=False)
    p_in, p_out = _get(price, "input"), _get(price, "output")
    p_read = _get(price, "cached_input") or p_in
    p_write = _get(price, "cache_write_input") or p_in
    reads = max(0, min(usage.cached_tokens, usage.input_tokens))
    writes = max(0, min(usage.cache_write_tokens, usage.input_tokens - reads))
    uncached = usage.input_tokens - reads - writes
    cost = (uncached * p_in + reads * p_read + writes * p_write + usage.output_tokens * p_out) / 1_000_000
    saved = (reads * (p_in - p_read) + writes * (p_in - p_write)) / 1_000_000
    return CallCost(usd(cost), priced=True, saved=usd(saved))


def request_chars(request: LLMRequest) -> int:
    n = len(request.system)
    for m in request.messages:
        n += len(m.content)
        for c in m.tool_calls:
            n += len(c.name) + len(repr(c.arguments))
    for t in request.tools:
        n += len(t.name) + len(t.description) + len(repr(t.parameters))
    return n


def estimate_call_usd(
    model: str, request: LLMRequest, pricing: Mapping[str, Any] | None, *, max_tokens: int | None = None
) -> float:
    """Worst case for one call: prompt characters / 4 as uncached input tokens, plus the full
    ``max_tokens`` (the request's, or the smaller cap a provider applies) as output."""
    price = price_for(model, pricing)
    if price is None:
        return 0.0
    input_tokens = -(-request_chars(request) // 4)
    output_tokens = max_tokens if max_tokens is not None else request.max_tokens
    return usd((input_tokens * _get(price, "input") + output_tokens * _get(price, "output")) / 1_000_000)
