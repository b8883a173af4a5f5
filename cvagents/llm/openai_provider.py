"""OpenAI Chat Completions behind the ``Provider`` seam (``openai`` SDK 3.x).

Also any OpenAI-compatible server (Ollama, vLLM, LM Studio, llama.cpp ...) via ``base_url``
(e.g. ``http://localhost:11434/v1``); such a server may need no key, so with a ``base_url`` a
missing key becomes a placeholder.

Mapping (ours -> Chat Completions):

- ``system`` -> a ``system`` message first;
- ``user`` -> ``user``; ``assistant`` -> ``assistant`` with ``content`` (or null) and
  ``tool_calls`` (``{"id", "type": "function", "function": {"name", "arguments": JSON}}``);
- ``tool`` -> ``{"role": "tool", "tool_call_id", "content"}``; the API has no error flag, so an
  error result's content starts with ``ERROR:``;
- ``ToolSpec`` -> ``{"type": "function", "function": {"name", "description", "parameters"}}``;
- the token limit goes as ``max_completion_tokens`` to api.openai.com and as ``max_tokens`` to
  any other server (the field compatible servers understand).

The request goes out through the public ``client.chat.completions.create`` (so the SDK's own
instrumentation sees it), with the SDK's retries (``max_retries`` on the client: it honours
``Retry-After`` and ``x-should-retry``).

Structured output: ``LLMRequest.response_schema`` goes as ``response_format`` ``json_schema``
(strict, see ``cvagents.llm.schema``). A compatible server that rejects it (HTTP 400 naming
``response_format`` / ``json_schema``) is asked again without it, and this provider (and the
others on the same endpoint) stop sending it: the caller's repair re-ask is the fallback.

Back: ``arguments`` parsed from JSON (unparseable -> ``{"_unparsed_arguments": raw}`` so the
tool layer reports it to the model), usage from ``prompt_tokens`` / ``completion_tokens`` /
``prompt_tokens_details.cached_tokens``; ``finish_reason`` stop/tool_calls/length ->
end_turn/tool_use/max_tokens.
"""

from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cvagents.clock import stopwatch
from cvagents.llm.base import (
    LazyClient,
    LLMRequest,
    LLMResult,
    Message,
    ProviderConfigError,
    SDKProvider,
    ToolCall,
    ToolSpec,
    Usage,
)
from cvagents.llm.retry import Failure, FailureKind, call_sdk, parse_retry_after, refuse_long_waits, sdk_attempts
from cvagents.llm.schema import ConvertOnce, openai_strict, schema_name

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)

NAME = "openai"
OFFICIAL_URL = "https://api.openai.com/v1"
PLACEHOLDER_KEY = "no-key-required"  # a local server ignores it; the SDK insists on a value
ERROR_PREFIX = "ERROR: "

_STOP = {"stop": "end_turn", "tool_calls": "tool_use", "function_call": "tool_use", "length": "max_tokens"}


def parse_arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return dict(raw)
    if raw is None or raw == "":
        return {}
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return {"_unparsed_arguments": raw}
    return value if isinstance(value, dict) else {"_unparsed_arguments": raw}


def to_openai_tools(tools: tuple[ToolSpec, ...]) -> list[dict[str, Any]]:
    out = []
    for t in tools:
        params = dict(t.parameters or {})
        params.setdefault("type", "object")
        if params["type"] == "object":
            params.setdefault("properties", {})
        out.append(
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": params}}
        )
    return out


_tools_once = ConvertOnce(to_openai_tools)
_strict_once = ConvertOnce(openai_strict)


def response_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {"name": schema_name(schema), "schema": _strict_once(schema), "strict": True},
    }


def rejects_response_format(exc: BaseException) -> bool:
    """A 400 whose message names the response format: the server cannot do ``json_schema``."""
    import openai  # already loaded: the client that raised made it

    if not isinstance(exc, openai.BadRequestError):
        return False
    text = (_body_message(exc.body) or str(exc)).lower()
    return any(w in text for w in ("response_format", "json_schema", "response format"))


def to_openai_messages(system: str, messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if system:
        out.append({"role": "system", "content": system})
    for m in messages:
        if m.role == "user":
            out.append({"role": "user", "content": m.content})
        elif m.role == "assistant":
            msg: dict[str, Any] = {"role": "assistant", "content": m.content or None}
            if m.tool_calls:
                msg["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)},
                    }
                    for c in m.tool_calls
                ]
            elif not m.content:
                msg["content"] = ""
            out.append(msg)
        elif m.role == "tool":
            content = m.content
            if m.is_error and not content.startswith(ERROR_PREFIX):
                content = ERROR_PREFIX + content
            out.append({"role": "tool", "tool_call_id": m.tool_call_id or "", "content": content})
        else:  # pragma: no cover
            raise ValueError(f"unknown message role {m.role!r}")
    return out


def classify(exc: BaseException) -> Failure:
    import openai  # already loaded: the client that raised made it

    attempts = sdk_attempts(exc)
    if isinstance(exc, openai.APITimeoutError):
        return Failure(FailureKind.TIMEOUT, detail="request timed out", attempts=attempts)
    if isinstance(exc, openai.APIConnectionError):
        return Failure(FailureKind.CONNECTION, detail=type(exc.__cause__ or exc).__name__, attempts=attempts)
    if isinstance(exc, openai.APIStatusError):
        return Failure(
            FailureKind.HTTP,
            status=exc.status_code,
            retry_after_s=parse_retry_after(exc.response.headers),
            detail=_body_message(exc.body) or exc.response.reason_phrase or "",
            attempts=attempts,
        )
    return Failure(FailureKind.OTHER, detail=f"{type(exc).__name__}: {exc}")


def _body_message(body: object) -> str | None:
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"]
        if isinstance(err, str):
            return err
    if isinstance(body, str):
        return body
    return None


class _Endpoint:
    """What providers on one client learned about its server (shared by ``with_model``)."""

    def __init__(self) -> None:
        self.json_schema_ok = True


class OpenAIProvider(SDKProvider):
    name = NAME

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 4,
        max_tokens: int | None = None,
        client: openai.OpenAI | None = None,
        endpoint: _Endpoint | None = None,
        clients: LazyClient | None = None,
    ):
        self.model = model
        self.timeout_s = timeout_s
        self.max_tokens_cap = max_tokens
        self.max_retries = max_retries
        self.endpoint = endpoint or _Endpoint()
        if not api_key:
            if not base_url:
                raise ProviderConfigError("openai: an API key is required unless base_url names a local server")
            api_key = PLACEHOLDER_KEY
        self._key = api_key
        self.base_url = base_url
        self._clients = clients or LazyClient(self._new_client, client)
        # base_url None: the SDK reads OPENAI_BASE_URL, else api.openai.com/v1.
        url = base_url or os.environ.get("OPENAI_BASE_URL") or OFFICIAL_URL
        host = urlsplit(str(client.base_url) if client is not None else url).hostname or ""
        self.official = host == "api.openai.com" or host.endswith(".openai.com")

    def _new_client(self) -> openai.OpenAI:
        import openai  # lazy: on the first call, not when the agent is built

        return openai.OpenAI(
            api_key=self._key,
            base_url=self.base_url,
            timeout=self.timeout_s,
            max_retries=self.max_retries,
            http_client=openai.DefaultHttpxClient(event_hooks={"response": [refuse_long_waits()]}),
        )

    def with_model(self, model: str) -> OpenAIProvider:
        return OpenAIProvider(
            model,
            api_key=self._key,
            base_url=self.base_url,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            max_tokens=self.max_tokens_cap,
            clients=self._clients,
            endpoint=self.endpoint,
        )

    def build_params(self, request: LLMRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model,
            "messages": to_openai_messages(request.system, request.messages),
        }
        limit = self.effective_max_tokens(request)
        if self.official:
            params["max_completion_tokens"] = limit
        else:
            params["max_tokens"] = limit
        if request.tools:
            params["tools"] = _tools_once(request.tools)
        if request.response_schema is not None and self.endpoint.json_schema_ok:
            params["response_format"] = response_format(request.response_schema)
        return params

    def _create(self, params: dict[str, Any]) -> Any:
        client = self._client
        try:
            return client.chat.completions.create(**params)
        except Exception as exc:
            if "response_format" not in params or not rejects_response_format(exc):
                raise
        self.endpoint.json_schema_ok = False  # remembered: not offered to this server again
        log.warning(
            "%s at %s rejects response_format json_schema: asking without it from now on",
            self.model,
            self._client.base_url,
        )
        params = {k: v for k, v in params.items() if k != "response_format"}
        return self._client.chat.completions.create(**params)

    def complete(self, request: LLMRequest) -> LLMResult:
        params = self.build_params(request)
        sw = stopwatch()
        resp = call_sdk(
            lambda: self._create(params),
            classify=classify,
            provider=NAME,
            model=self.model,
            timeout_s=self.timeout_s,
            secrets=(self._key,) if self._key != PLACEHOLDER_KEY else (),
        )
        return self.parse(resp, sw.elapsed())

    def parse(self, resp: Any, latency_s: float) -> LLMResult:
        choices = resp.choices or []
        if not choices:
            return LLMResult("", (), self._usage(resp), resp.model or self.model, NAME, latency_s, "no_choices")
        choice = choices[0]
        msg = choice.message
        calls: list[ToolCall] = []
        for i, tc in enumerate(msg.tool_calls or ()):
            fn = getattr(tc, "function", None)
            if fn is not None:
                name, args = fn.name, parse_arguments(fn.arguments)
            else:  # a custom (free-text) tool call
                custom = getattr(tc, "custom", None)
                name = getattr(custom, "name", "") or ""
                args = {"input": getattr(custom, "input", "")}
            calls.append(ToolCall(id=tc.id or f"call_{i}", name=name, arguments=args))
        if not calls and getattr(msg, "function_call", None) is not None:  # deprecated form
            fc = msg.function_call
            calls.append(ToolCall(id="call_0", name=fc.name, arguments=parse_arguments(fc.arguments)))
        raw_stop = choice.finish_reason or ""
        stop = _STOP.get(raw_stop, raw_stop or "end_turn")
        stop = self.stop_with_calls(stop, bool(calls))
        text = msg.content or ""
        if not text and getattr(msg, "refusal", None):
            text = msg.refusal
            stop = "refusal" if stop == "end_turn" else stop
        return LLMResult(
            text=text,
            tool_calls=tuple(calls),
            usage=self._usage(resp),
            model=resp.model or self.model,
            provider=NAME,
            latency_s=latency_s,
            stop_reason=stop,
        )

    @staticmethod
    def _usage(resp: Any) -> Usage:
        u = getattr(resp, "usage", None)
        if u is None:
            return Usage()
        details = getattr(u, "prompt_tokens_details", None)
        cached = (getattr(details, "cached_tokens", None) or 0) if details is not None else 0
        return Usage(input_tokens=u.prompt_tokens or 0, output_tokens=u.completion_tokens or 0, cached_tokens=cached)
