"""Anthropic Messages API behind the ``Provider`` seam (``anthropic`` SDK 2.x).

Mapping (ours -> Messages API):

- ``system`` -> top-level ``system`` (one text block, marked ``cache_control: ephemeral`` so a
  long, repeated agent prompt is served from the prompt cache);
- ``user`` -> ``user`` turn with a text block;
- ``assistant`` -> ``assistant`` turn: a text block (if any) and one ``tool_use`` block per call;
- ``tool`` -> a ``tool_result`` block (``tool_use_id``, ``content``, ``is_error``) in a ``user``
  turn; consecutive results (and a user text right after them) share one turn, as the API wants;
- ``ToolSpec`` -> ``{"name", "description", "input_schema"}``, the last one marked
  ``cache_control: ephemeral`` too (the API caches tools, then system, as one prefix).

Back: text blocks joined, ``tool_use`` blocks -> ``ToolCall`` (``input`` is already a dict),
usage: ``input_tokens`` = uncached + cache writes + cache reads (the whole prompt),
``cached_tokens`` = cache reads, ``cache_write_tokens`` = cache writes; ``stop_reason`` passes through (the API's own names are ours).

Structured output: ``LLMRequest.response_schema`` goes as ``output_config={"format":
{"type": "json_schema", "schema": ...}}``, the schema made acceptable by the SDK's public
``anthropic.transform_schema`` (converted once per schema).

Retries are the SDK's (``max_retries`` on the client: it honours ``Retry-After`` and
``x-should-retry``); ``cvagents.llm.retry.call_sdk`` turns its final error into ours.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cvagents.clock import stopwatch
from cvagents.llm.base import LazyClient, LLMRequest, LLMResult, Message, SDKProvider, ToolCall, ToolSpec, Usage
from cvagents.llm.retry import Failure, FailureKind, call_sdk, parse_retry_after, refuse_long_waits, sdk_attempts
from cvagents.llm.schema import ConvertOnce

if TYPE_CHECKING:
    import anthropic

NAME = "anthropic"
EMPTY_TEXT = "(empty)"


def _object_schema(parameters: dict[str, Any] | None) -> dict[str, Any]:
    schema = dict(parameters or {})
    schema.setdefault("type", "object")
    if schema["type"] == "object":
        schema.setdefault("properties", {})
    return schema


def to_anthropic_tools(tools: tuple[ToolSpec, ...]) -> list[dict[str, Any]]:
    return [{"name": t.name, "description": t.description, "input_schema": _object_schema(t.parameters)} for t in tools]


_tools_once = ConvertOnce(to_anthropic_tools)


def _transform_schema(schema: dict[str, Any]) -> dict[str, Any]:
    import anthropic  # lazy: see AnthropicProvider._new_client

    return anthropic.transform_schema(schema)


_schema_once = ConvertOnce(_transform_schema)


def to_anthropic_messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def push(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for m in messages:
        if m.role == "user":
            push("user", [{"type": "text", "text": m.content if m.content.strip() else EMPTY_TEXT}])
        elif m.role == "assistant":
            blocks: list[dict[str, Any]] = []
            if m.content.strip():
                blocks.append({"type": "text", "text": m.content})
            for c in m.tool_calls:
                blocks.append({"type": "tool_use", "id": c.id, "name": c.name, "input": dict(c.arguments)})
            push("assistant", blocks or [{"type": "text", "text": EMPTY_TEXT}])
        elif m.role == "tool":
            block: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": m.tool_call_id or "",
                "content": m.content if m.content.strip() else EMPTY_TEXT,
            }
            if m.is_error:
                block["is_error"] = True
            push("user", [block])
        else:  # pragma: no cover - Message.role is a Literal
            raise ValueError(f"unknown message role {m.role!r}")
    return out


def classify(exc: BaseException) -> Failure:
    import anthropic  # already loaded: the client that raised made it

    attempts = sdk_attempts(exc)
    if isinstance(exc, anthropic.APITimeoutError):
        return Failure(FailureKind.TIMEOUT, detail="request timed out", attempts=attempts)
    if isinstance(exc, anthropic.APIConnectionError):
        return Failure(FailureKind.CONNECTION, detail=type(exc.__cause__ or exc).__name__, attempts=attempts)
    if isinstance(exc, anthropic.APIStatusError):
        detail = exc.api_message or _body_message(exc.body) or exc.response.reason_phrase
        return Failure(
            FailureKind.HTTP,
            status=exc.status_code,
            retry_after_s=parse_retry_after(exc.response.headers),
            detail=str(detail or ""),
            attempts=attempts,
        )
    return Failure(FailureKind.OTHER, detail=f"{type(exc).__name__}: {exc}")


def _body_message(body: object) -> str | None:
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"]
        if isinstance(body.get("message"), str):
            return body["message"]
    if isinstance(body, str):
        return body
    return None


class AnthropicProvider(SDKProvider):
    name = NAME

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 4,
        max_tokens: int | None = None,
        cache_system_prompt: bool = True,
        client: anthropic.Anthropic | None = None,
        clients: LazyClient | None = None,
    ):
        self.model = model
        self.timeout_s = timeout_s
        self.max_tokens_cap = max_tokens
        self.cache_system_prompt = cache_system_prompt
        self.max_retries = max_retries
        self._key = api_key
        self.base_url = base_url
        self._clients = clients or LazyClient(self._new_client, client)

    def _new_client(self) -> anthropic.Anthropic:
        import anthropic  # lazy: on the first call, not when the agent is built

        # base_url None: the SDK reads ANTHROPIC_BASE_URL, else api.anthropic.com. An explicit
        # api_key keeps the SDK from consulting ANTHROPIC_API_KEY or credential profiles.
        return anthropic.Anthropic(
            api_key=self._key,
            base_url=self.base_url,
            timeout=self.timeout_s,
            max_retries=self.max_retries,
            http_client=anthropic.DefaultHttpxClient(event_hooks={"response": [refuse_long_waits()]}),
        )

    def with_model(self, model: str) -> AnthropicProvider:
        """The same endpoint, key, client and policy, another model (a budget fallback)."""
        return AnthropicProvider(
            model,
            api_key=self._key,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            max_tokens=self.max_tokens_cap,
            cache_system_prompt=self.cache_system_prompt,
            clients=self._clients,
        )

    def build_params(self, request: LLMRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.effective_max_tokens(request),
            "messages": to_anthropic_messages(request.messages),
        }
        if request.system:
            block: dict[str, Any] = {"type": "text", "text": request.system}
            if self.cache_system_prompt:
                block["cache_control"] = {"type": "ephemeral"}
            params["system"] = [block]
        if request.tools:
            params["tools"] = _tools_once(request.tools)
            if self.cache_system_prompt:  # breakpoint after the tools: tools + system are cached together
                params["tools"] = [
                    *params["tools"][:-1],
                    {**params["tools"][-1], "cache_control": {"type": "ephemeral"}},
                ]
        if request.response_schema is not None:
            params["output_config"] = {
                "format": {"type": "json_schema", "schema": _schema_once(request.response_schema)}
            }
        return params

    def complete(self, request: LLMRequest) -> LLMResult:
        params = self.build_params(request)
        sw = stopwatch()
        msg = call_sdk(
            lambda: self._client.messages.create(**params),
            classify=classify,
            provider=NAME,
            model=self.model,
            timeout_s=self.timeout_s,
            secrets=(self._key,),
        )
        return self.parse(msg, sw.elapsed())

    def parse(self, msg: Any, latency_s: float) -> LLMResult:
        texts: list[str] = []
        calls: list[ToolCall] = []
        for block in msg.content or ():
            kind = getattr(block, "type", None)
            if kind == "text":
                texts.append(block.text)
            elif kind == "tool_use":
                args = block.input if isinstance(block.input, dict) else {"_unparsed_arguments": block.input}
                calls.append(ToolCall(id=block.id, name=block.name, arguments=dict(args)))
        u = msg.usage
        cache_read = getattr(u, "cache_read_input_tokens", None) or 0
        cache_write = getattr(u, "cache_creation_input_tokens", None) or 0
        usage = Usage(
            input_tokens=(u.input_tokens or 0) + cache_read + cache_write,
            output_tokens=u.output_tokens or 0,
            cached_tokens=cache_read,
            cache_write_tokens=cache_write,
        )
        stop = self.stop_with_calls(msg.stop_reason or "end_turn", bool(calls))
        return LLMResult(
            text="".join(texts),
            tool_calls=tuple(calls),
            usage=usage,
            model=msg.model or self.model,
            provider=NAME,
            latency_s=latency_s,
            stop_reason=stop,
        )
