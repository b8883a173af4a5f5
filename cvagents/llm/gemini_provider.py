"""Gemini behind the ``Provider`` seam (``google-genai``; ``google-generativeai`` is end-of-life).

``genai.Client(api_key=..., vertexai=False)`` and ``client.models.generate_content`` with
function declarations; API version ``v1beta`` (function-call ids, JSON-schema parameters).

Mapping (ours -> Gemini):

- ``system`` -> ``config.system_instruction``;
- ``user`` -> ``Content(role="user", parts=[text])``;
- ``assistant`` -> ``Content(role="model")`` with a text part and one ``function_call`` part per
  call (with the ``thought_signature`` the model sent, kept in memory by call id: thinking
  models reject a replayed call without it);
- ``tool`` -> a ``function_response`` part (``{"output": ...}``, or ``{"error": ...}`` when
  ``is_error``) in a ``user`` turn; consecutive results share one turn;
- ``ToolSpec`` -> ``FunctionDeclaration(name, description, parameters_json_schema)``.
  Automatic function calling is off: the executive runs tools, not the SDK.

Back: text parts joined (thought parts skipped), ``function_call`` parts -> ``ToolCall`` (a call
without an id gets one, which is not sent back), usage: ``prompt_token_count`` (includes cached)
+ tool-use prompt tokens / ``candidates_token_count`` + ``thoughts_token_count`` /
``cached_content_token_count``; finish STOP -> end_turn (tool_use when there are calls),
MAX_TOKENS -> max_tokens, anything else raw.

Endpoint: ``base_url`` from config, else ``GOOGLE_GEMINI_BASE_URL`` (the SDK honours it itself;
the factory also passes a value found in ``.env``). Timeout goes in ``HttpOptions`` (ms).

Retries: the SDK's ``HttpRetryOptions`` backs off blindly (it reads neither ``Retry-After`` nor
the ``RetryInfo`` of a 429), so it is set to one attempt and ``cvagents.llm.retry``'s policy
retries, waiting what the server asks; told to wait longer than ``max_retry_after_s``, it gives
up at once so the agent fails over.

Structured output: ``LLMRequest.response_schema`` goes as ``response_mime_type
"application/json"`` + ``response_json_schema`` (JSON Schema as it is). Tool declarations are
converted once per tuple of ``ToolSpec``.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from cvagents.clock import stopwatch
from cvagents.llm.base import LazyClient, LLMRequest, LLMResult, Message, SDKProvider, ToolCall, ToolSpec, Usage
from cvagents.llm.retry import Failure, FailureKind, RetryPolicy, call_with_retry, parse_duration, parse_retry_after
from cvagents.llm.schema import ConvertOnce

if TYPE_CHECKING:
    from google import genai
    from google.genai import types

NAME = "gemini"
API_VERSION = "v1beta"
SYNTHETIC_ID_PREFIX = "cvagents-gemini-call-"
_counter = itertools.count(1)
_SIGNATURES_KEPT = 4096


def to_gemini_tools(tools: tuple[ToolSpec, ...]) -> list[dict[str, Any]]:
    if not tools:
        return []
    decls = []
    for t in tools:
        params = dict(t.parameters or {})
        params.setdefault("type", "object")
        if params["type"] == "object":
            params.setdefault("properties", {})
        decls.append({"name": t.name, "description": t.description, "parameters_json_schema": params})
    return [{"function_declarations": decls}]


_tools_once = ConvertOnce(to_gemini_tools)


class _Signatures:
    """Thought signatures by tool-call id (bounded, thread-safe)."""

    def __init__(self, limit: int = _SIGNATURES_KEPT):
        self._d: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._limit = limit

    def put(self, call_id: str, sig: bytes) -> None:
        with self._lock:
            self._d[call_id] = sig
            self._d.move_to_end(call_id)
            while len(self._d) > self._limit:
                self._d.popitem(last=False)

    def get(self, call_id: str) -> bytes | None:
        with self._lock:
            return self._d.get(call_id)


def to_gemini_contents(messages: tuple[Message, ...], signatures: _Signatures | None = None) -> list[dict[str, Any]]:
    """``Content`` dicts (the SDK's ``ContentListUnionDict``): validating plain dicts costs the
    SDK a fraction of what re-validating ``types.Content`` objects does."""
    out: list[dict[str, Any]] = []
    names_by_id: dict[str, str] = {}

    def push(role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if out and out[-1]["role"] == role:
            out[-1]["parts"].extend(parts)
        else:
            out.append({"role": role, "parts": parts})

    for m in messages:
        if m.role == "user":
            push("user", [{"text": m.content or " "}])
        elif m.role == "assistant":
            parts: list[dict[str, Any]] = []
            if m.content:
                parts.append({"text": m.content})
            for c in m.tool_calls:
                names_by_id[c.id] = c.name
                fc: dict[str, Any] = {"name": c.name, "args": dict(c.arguments)}
                if not c.id.startswith(SYNTHETIC_ID_PREFIX):
                    fc["id"] = c.id
                part: dict[str, Any] = {"function_call": fc}
                sig = signatures.get(c.id) if signatures is not None else None
                if sig:
                    part["thought_signature"] = sig
                parts.append(part)
            push("model", parts or [{"text": " "}])
        elif m.role == "tool":
            call_id = m.tool_call_id or ""
            fr: dict[str, Any] = {
                "name": m.name or names_by_id.get(call_id, ""),
                "response": {"error": m.content} if m.is_error else {"output": m.content},
            }
            if call_id and not call_id.startswith(SYNTHETIC_ID_PREFIX):
                fr["id"] = call_id
            push("user", [{"function_response": fr}])
        else:  # pragma: no cover
            raise ValueError(f"unknown message role {m.role!r}")
    return out


def classify(exc: BaseException) -> Failure:
    import httpx2  # already loaded with the SDK, whose client raised
    from google.genai import errors as genai_errors

    if isinstance(exc, genai_errors.APIError):
        resp = getattr(exc, "response", None)
        headers = getattr(resp, "headers", None)
        retry_after = parse_retry_after(headers) if headers is not None else None
        if retry_after is None:
            retry_after = _retry_info_delay(exc.details)
        status = exc.code if isinstance(exc.code, int) else None
        detail = exc.message or (exc.status or "")
        return Failure(FailureKind.HTTP, status=status, retry_after_s=retry_after, detail=str(detail))
    if isinstance(exc, httpx2.TimeoutException):
        return Failure(FailureKind.TIMEOUT, detail="request timed out")
    if isinstance(exc, (httpx2.TransportError, ConnectionError)):
        return Failure(FailureKind.CONNECTION, detail=type(exc).__name__)
    return Failure(FailureKind.OTHER, detail=f"{type(exc).__name__}: {exc}")


def _retry_info_delay(details: Any) -> float | None:
    """``error.details[].retryDelay`` of a ``google.rpc.RetryInfo`` (Gemini's 429s carry it)."""
    try:
        items = details.get("error", details).get("details") or []
    except AttributeError:
        return None
    for d in items:
        if isinstance(d, dict) and str(d.get("@type", "")).endswith("RetryInfo"):
            return parse_duration(d.get("retryDelay"))
    return None


_STOP = {"STOP": "end_turn", "MAX_TOKENS": "max_tokens"}


class GeminiProvider(SDKProvider):
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
        retry_policy: RetryPolicy | None = None,
        client: genai.Client | None = None,
        signatures: _Signatures | None = None,
        clients: LazyClient | None = None,
    ):
        self.model = model
        self.timeout_s = timeout_s
        self.max_tokens_cap = max_tokens
        self.retry_policy = retry_policy or RetryPolicy(max_retries=max_retries)
        self._key = api_key
        self._signatures = signatures or _Signatures()
        self.base_url = base_url
        self._clients = clients or LazyClient(self._new_client, client)

    def _new_client(self) -> genai.Client:
        from google import genai  # lazy: on the first call, not when the agent is built
        from google.genai import types

        opts = types.HttpOptions(
            api_version=API_VERSION,
            timeout=max(1, int(round(self.timeout_s * 1000))),
            retry_options=types.HttpRetryOptions(attempts=1),
        )
        if self.base_url:  # else the SDK applies GOOGLE_GEMINI_BASE_URL itself
            opts.base_url = self.base_url
        return genai.Client(api_key=self._key, vertexai=False, http_options=opts)

    def with_model(self, model: str) -> GeminiProvider:
        return GeminiProvider(
            model,
            api_key=self._key,
            timeout_s=self.timeout_s,
            max_tokens=self.max_tokens_cap,
            retry_policy=self.retry_policy,
            clients=self._clients,
            signatures=self._signatures,
        )

    def build_params(self, request: LLMRequest) -> dict[str, Any]:
        config: dict[str, Any] = {
            "max_output_tokens": self.effective_max_tokens(request),
            "automatic_function_calling": {"disable": True},
        }
        if request.system:
            config["system_instruction"] = request.system
        if request.tools:
            config["tools"] = _tools_once(request.tools)
        if request.response_schema is not None:
            config["response_mime_type"] = "application/json"
            config["response_json_schema"] = request.response_schema
        return {
            "model": self.model,
            "contents": to_gemini_contents(request.messages, self._signatures),
            "config": config,
        }

    def complete(self, request: LLMRequest) -> LLMResult:
        params = self.build_params(request)
        sw = stopwatch()
        resp = call_with_retry(
            lambda: self._client.models.generate_content(**params),
            classify=classify,
            policy=self.retry_policy,
            provider=NAME,
            model=self.model,
            timeout_s=self.timeout_s,
            secrets=(self._key,),
        )
        return self.parse(resp, sw.elapsed())

    def parse(self, resp: types.GenerateContentResponse, latency_s: float) -> LLMResult:
        texts: list[str] = []
        calls: list[ToolCall] = []
        cands = resp.candidates or []
        raw_stop = ""
        if cands:
            cand = cands[0]
            if cand.finish_reason is not None:
                raw_stop = getattr(cand.finish_reason, "value", str(cand.finish_reason))
            for part in cand.content.parts if cand.content and cand.content.parts else ():
                if part.function_call is not None:
                    fc = part.function_call
                    call_id = fc.id or f"{SYNTHETIC_ID_PREFIX}{next(_counter)}"
                    if part.thought_signature:
                        self._signatures.put(call_id, part.thought_signature)
                    calls.append(ToolCall(id=call_id, name=fc.name or "", arguments=dict(fc.args or {})))
                elif part.text is not None and not part.thought:
                    texts.append(part.text)
        else:
            fb = resp.prompt_feedback
            reason = getattr(getattr(fb, "block_reason", None), "value", None) if fb else None
            raw_stop = f"blocked:{reason}" if reason else "no_candidates"
        stop = _STOP.get(raw_stop, raw_stop or "end_turn")
        stop = self.stop_with_calls(stop, bool(calls))
        um = resp.usage_metadata
        if um is not None:
            usage = Usage(
                input_tokens=(um.prompt_token_count or 0) + (um.tool_use_prompt_token_count or 0),
                output_tokens=(um.candidates_token_count or 0) + (um.thoughts_token_count or 0),
                cached_tokens=um.cached_content_token_count or 0,
            )
        else:
            usage = Usage()
        return LLMResult(
            text="".join(texts),
            tool_calls=tuple(calls),
            usage=usage,
            model=resp.model_version or self.model,
            provider=NAME,
            latency_s=latency_s,
            stop_reason=stop,
        )
