"""Loopback stand-ins for the Anthropic, OpenAI and Gemini HTTP APIs (a helper, not a test module).

A real ``ThreadingHTTPServer`` on ``127.0.0.1:0`` in a daemon thread, speaking one API's wire
format. Each test scripts it with a queue of responses (status, headers, JSON body, optional
delay) and afterwards reads the requests it received (path, headers, parsed JSON body, and the
server's own handling time, which the overhead benchmark subtracts).

    with LLMServer("anthropic") as srv:
        srv.push(Reply(body=anthropic_message(text="hi")))
        provider = AnthropicProvider("claude-x", api_key="k", base_url=srv.base_url)
        ...
        srv.requests[0].json["messages"]

Routes: Anthropic ``POST /v1/messages``; OpenAI ``POST /v1/chat/completions``; Gemini
``POST /v1beta/models/{model}:generateContent``. Anything else gets a 404 in the API's error
format; an empty queue gets a 418 (not retryable) unless ``default`` is set.
"""

from __future__ import annotations

import json
import queue
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cvagents.clock import stopwatch

KINDS = ("anthropic", "openai", "gemini")
_ROUTES = {
    "anthropic": re.compile(r"^/v1/messages$"),
    "openai": re.compile(r"^/v1/chat/completions$"),
    "gemini": re.compile(r"^/v1beta/models/(?P<model>[^/:]+):generateContent$"),
}


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str/bytes -> sent as is
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    json: Any
    handling_s: float = 0.0  # server-side: request parsed -> response written
    at: float = field(default_factory=time.monotonic)  # when the server read it (gaps between retries)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def error_body(kind: str, status: int, message: str) -> dict[str, Any]:
    if kind == "anthropic":
        etype = {
            400: "invalid_request_error",
            401: "authentication_error",
            403: "permission_error",
            404: "not_found_error",
            429: "rate_limit_error",
            529: "overloaded_error",
        }.get(status, "api_error")
        return {"type": "error", "error": {"type": etype, "message": message}}
    if kind == "openai":
        return {
            "error": {
                "message": message,
                "type": "server_error" if status >= 500 else "invalid_request_error",
                "param": None,
                "code": None,
            }
        }
    gstatus = {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        429: "RESOURCE_EXHAUSTED",
        500: "INTERNAL",
        503: "UNAVAILABLE",
    }.get(status, "UNKNOWN")
    return {"error": {"code": status, "message": message, "status": gstatus}}


def rejects_json_schema() -> Reply:
    """What llama.cpp-style OpenAI-compatible servers without constrained decoding answer."""
    return error("openai", 400, "response_format: 'json_schema' is not supported by this server")


def error(
    kind: str,
    status: int,
    message: str = "scripted error",
    *,
    headers: dict[str, str] | None = None,
    delay_s: float = 0.0,
) -> Reply:
    return Reply(status=status, body=error_body(kind, status, message), headers=dict(headers or {}), delay_s=delay_s)


# ----------------------------------------------------------------------- response bodies


def anthropic_message(
    text: str | None = None,
    *,
    tool_calls: list[tuple[str, str, dict[str, Any]]] = (),  # type: ignore[assignment]
    model: str = "claude-test",
    stop_reason: str | None = None,
    input_tokens: int = 10,
    output_tokens: int = 5,
    cache_read: int = 0,
    cache_creation: int = 0,
) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if text is not None:
        content.append({"type": "text", "text": text})
    for cid, name, args in tool_calls:
        content.append({"type": "tool_use", "id": cid, "name": name, "input": args})
    return {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason or ("tool_use" if tool_calls else "end_turn"),
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_read_input_tokens": cache_read,
            "cache_creation_input_tokens": cache_creation,
        },
    }


def openai_completion(
    text: str | None = None,
    *,
    tool_calls: list[tuple[str, str, Any]] = (),  # type: ignore[assignment]
    model: str = "gpt-test",
    finish_reason: str | None = None,
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
    cached_tokens: int | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        message["tool_calls"] = [
            {
                "id": cid,
                "type": "function",
                "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)},
            }
            for cid, name, args in tool_calls
        ]
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cached_tokens is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop")}
        ],
        "usage": usage,
    }


def gemini_response(
    text: str | None = None,
    *,
    function_calls: list[tuple[str | None, str, dict[str, Any]]] = (),  # type: ignore[assignment]
    model: str = "gemini-test",
    finish_reason: str = "STOP",
    prompt_tokens: int = 10,
    candidates_tokens: int = 5,
    cached_tokens: int | None = None,
    thoughts_tokens: int | None = None,
    thought_signature: str | None = None,
) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if text is not None:
        parts.append({"text": text})
    for cid, name, args in function_calls:
        fc: dict[str, Any] = {"name": name, "args": args}
        if cid:
            fc["id"] = cid
        part: dict[str, Any] = {"functionCall": fc}
        if thought_signature:
            part["thoughtSignature"] = thought_signature
        parts.append(part)
    usage: dict[str, Any] = {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": candidates_tokens,
        "totalTokenCount": prompt_tokens + candidates_tokens + (thoughts_tokens or 0),
    }
    if cached_tokens is not None:
        usage["cachedContentTokenCount"] = cached_tokens
    if thoughts_tokens is not None:
        usage["thoughtsTokenCount"] = thoughts_tokens
    return {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish_reason, "index": 0}],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": "resp-test",
    }


# ----------------------------------------------------------------------------- the server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real APIs
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        # Like the real APIs' front ends: no Nagle delay between the header and body writes.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def parse_request(self) -> bool:
        # The request line has arrived: from here on the time is the server's own.
        self._sw = stopwatch()
        return super().parse_request()

    def _serve(self) -> None:
        sw = getattr(self, "_sw", None) or stopwatch()
        srv = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        rec = Received(
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            json=parsed,
        )
        path = self.path.split("?", 1)[0]
        if self.command != "POST" or not _ROUTES[srv.kind].match(path):
            reply = error(srv.kind, 404, f"no route for {self.command} {path}")
        else:
            try:
                reply = srv._queue.get_nowait()
            except queue.Empty:
                if srv.responder is not None:
                    reply = srv.responder(srv.kind, rec)
                else:
                    reply = srv.default or error(srv.kind, 418, "test server: no scripted response left")
        with srv._lock:  # recorded before answering, so a test sees it once its call returns
            srv.requests.append(rec)
        if reply.delay_s:
            srv._stop.wait(reply.delay_s)
        if isinstance(reply.body, (dict, list)):
            payload = json.dumps(reply.body).encode()
            ctype = "application/json"
        elif isinstance(reply.body, str):
            payload, ctype = reply.body.encode(), "text/plain"
        else:
            payload, ctype = (reply.body or b""), "application/octet-stream"
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            self.close_connection = True
        rec.handling_s = sw.elapsed()

    do_POST = _serve
    do_GET = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: LLMServer


class LLMServer:
    def __init__(self, kind: str, *, default: Reply | None = None, responder: Any = None):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        self.kind = kind
        self.default = default
        self.responder = responder  # (kind, Received) -> Reply, used when the queue is empty
        self.requests: list[Received] = []
        self._queue: queue.Queue[Reply] = queue.Queue()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self) -> LLMServer:
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LLMServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # addresses
    @property
    def port(self) -> int:
        assert self._httpd is not None
        return self._httpd.server_address[1]

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What the SDK's ``base_url`` should be: the OpenAI SDK expects the ``/v1`` prefix in it."""
        return self.origin + "/v1" if self.kind == "openai" else self.origin

    # scripting
    def push(self, *replies: Reply) -> LLMServer:
        for r in replies:
            self._queue.put(r)
        return self

    def reply(self, body: Any, **kw: Any) -> LLMServer:
        return self.push(Reply(body=body, **kw))

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()


# ------------------------------------------------------------------------- test helpers


class Sleeps(list):
    """An injectable ``sleep`` that records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def fake_offline() -> Any:
    """Stands in for ``cvagents.offline.provider.OfflineProvider`` (its name and model) and
    answers every call with "offline answer": the one scripted fake, from tests/fakes.py."""
    from fakes import ScriptedProvider

    return ScriptedProvider.as_offline(otherwise="offline answer")


def make_request(
    *messages: Any,
    system: str = "You are the critic.",
    tools: Any = (),
    max_tokens: int = 256,
    agent: str = "critic",
    context: dict[str, Any] | None = None,
) -> Any:
    from cvagents.llm.base import LLMRequest, Message

    msgs = tuple(messages) or (Message("user", "Review the rollout plan."),)
    return LLMRequest(
        agent=agent,
        role="critic",
        purpose="contribution",
        system=system,
        messages=msgs,
        tools=tuple(tools),
        max_tokens=max_tokens,
        context=dict(context or {}),
    )


def metrics_tool() -> Any:
    from cvagents.llm.base import ToolSpec

    return ToolSpec(
        name="read_metrics",
        description="Read the latest rollout metrics for a stage.",
        parameters={"type": "object", "properties": {"stage": {"type": "string"}}, "required": ["stage"]},
    )
