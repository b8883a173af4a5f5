"""The span of one agent call, in the OpenTelemetry GenAI semantic conventions
(``gen_ai.*``), plus what only cvagents knows: the agent, the purpose, the cost.

``agent_call`` decorates ``ManagedProvider.complete``: the span is current while the real
provider runs, so an SDK's own instrumentation nests its spans under it; ``cost`` adds the
call's cost, once the ledger has priced it.
"""

from __future__ import annotations

from typing import Any

from cvagents import tracing
from cvagents.llm.base import LLMRequest, LLMResult

#: ``gen_ai.provider.name`` (and the older ``gen_ai.system``) for each of our provider names
GENAI_PROVIDER = {"openai": "openai", "anthropic": "anthropic", "gemini": "gcp.gemini", "offline": "cvagents.offline"}


def _name(provider: Any, request: LLMRequest) -> str:
    return f"chat {provider.model}"


def _request(provider: Any, request: LLMRequest) -> dict[str, Any]:
    system = GENAI_PROVIDER.get(provider.name, provider.name)
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": system,
        "gen_ai.system": system,
        "gen_ai.request.model": provider.model,
        "gen_ai.request.max_tokens": request.max_tokens,
        "gen_ai.agent.name": request.agent,
        "cvagents.agent": request.agent,
        "cvagents.purpose": request.purpose,
    }


def _result(result: LLMResult) -> dict[str, Any]:
    u = result.usage
    return {
        "gen_ai.response.model": result.model,
        "gen_ai.response.finish_reasons": [result.stop_reason] if result.stop_reason else None,
        "gen_ai.usage.input_tokens": u.input_tokens,
        "gen_ai.usage.output_tokens": u.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": u.cached_tokens,
        "gen_ai.usage.cache_creation.input_tokens": u.cache_write_tokens,
        "cvagents.answered_by": result.provider,  # another than gen_ai.provider.name after a fallback
        "cvagents.tool_calls": len(result.tool_calls),
    }


agent_call = tracing.traced(_name, _request, _result, kind="client")


def cost(usd: float) -> None:
    """The cost of the call under way, in US dollars, on its span."""
    tracing.annotate({"cvagents.cost_usd": usd})
