"""The one provider seam: every backend turns an ``LLMRequest`` into an ``LLMResult``.

The meeting and the executive only ever call ``Provider.complete``; they never see an SDK.
``Provider.close`` releases what a provider holds (an SDK client's connections); its default
does nothing, so whoever owns a provider just closes it, whatever kind it is.
``LLMRequest.context`` carries the run's structured state next to the rendered prompt: real
providers ignore it (they read the text), the offline provider computes its answer from it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from cvagents.errors import CVAgentsError

Purpose = Literal["contribution", "synthesis", "action"]


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the model sees it: name, description and a JSON schema for its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Message:
    """One turn of a conversation.

    ``role`` is ``user``, ``assistant`` (text and/or ``tool_calls``) or ``tool`` (the result of
    the call named by ``tool_call_id``; ``name`` is the tool's name).
    """

    role: Literal["user", "assistant", "tool"]
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0  # input tokens read from the provider's prompt cache
    cache_write_tokens: int = 0  # input tokens written to it (Anthropic prices them above base input)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "cache_write_tokens": self.cache_write_tokens,
        }


@dataclass(frozen=True)
class LLMRequest:
    agent: str
    role: str
    purpose: Purpose
    system: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    max_tokens: int = 2048
    context: dict[str, Any] = field(default_factory=dict)
    # A JSON schema the answer's text must follow (e.g. ``Synthesis.model_json_schema()``): each
    # provider asks its API to enforce it natively; the caller still validates the answer.
    response_schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class LLMResult:
    text: str
    tool_calls: tuple[ToolCall, ...]
    usage: Usage
    model: str
    provider: str
    latency_s: float
    stop_reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in self.tool_calls],
            "usage": self.usage.as_dict(),
            "model": self.model,
            "provider": self.provider,
            "latency_s": round(self.latency_s, 6),
            "stop_reason": self.stop_reason,
        }


class ProviderError(CVAgentsError, RuntimeError):
    """A provider call failed for good (after its retries), or a provider cannot be set up as
    configured. The message never holds a key."""


class ProviderConfigError(ProviderError, ValueError):
    """A provider cannot be set up as configured (no API key, no endpoint)."""


@runtime_checkable
class Provider(Protocol):
    """One method wide: ``complete``. Subclass it to inherit the no-op ``close``."""

    name: str  # "anthropic" | "openai" | "gemini" | "offline"
    model: str

    def complete(self, request: LLMRequest) -> LLMResult: ...

    def close(self) -> None:
        """Release what the provider holds (connections); nothing by default."""
        return None


class LazyClient:
    """An SDK client made on first use, so building an agent imports no SDK (each SDK's import
    and client take about a second and tens of MiB). Thread-safe: the meeting calls agents from a
    thread pool. Shared by a provider and its ``with_model`` copies, like the client itself."""

    def __init__(self, make: Callable[[], Any], client: Any = None):
        self._make = make
        self._client = client
        self._lock = threading.Lock()

    def get(self) -> Any:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make()
                client = self._client
        return client

    @property
    def made(self) -> bool:
        return self._client is not None

    def close(self) -> None:
        """Close the client if one was made; a never-used provider has nothing to close."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


class SDKProvider(Provider):
    """What the three SDK-backed providers share: the per-agent output cap, the stop-reason rule
    for tool calls, the lazily made SDK client and closing it, and a repr that never shows the key."""

    model: str
    max_tokens_cap: int | None = None
    _clients: LazyClient

    @property
    def _client(self) -> Any:
        """The SDK client, made (and its SDK imported) on first use."""
        return self._clients.get()

    def effective_max_tokens(self, request: LLMRequest) -> int:
        """The request's ``max_tokens``, lowered to the agent's configured cap if it has one."""
        cap = self.max_tokens_cap
        return min(request.max_tokens, cap) if cap else request.max_tokens

    @staticmethod
    def stop_with_calls(stop: str, has_calls: bool) -> str:
        """A normal end with tool calls is ``tool_use`` (some servers say "stop" with them)."""
        return "tool_use" if has_calls and stop == "end_turn" else stop

    def close(self) -> None:
        self._clients.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"
