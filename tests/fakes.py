"""The one scripted provider for every test that needs a fake agent (a helper, not a test module).

In the spirit of simonw/llm's ``MockModel.enqueue``: replies are queued for one agent, one
purpose, or everyone, and taken in order; once a queue is empty the provider answers as the
built-in offline provider would (or with the ``otherwise`` reply). It records every request.

A reply is one of:

- ``"text"``: a text answer;
- ``[("tool_name", {args}), ...]`` (or ``ToolCall`` objects): native tool calls;
- an exception (instance or class): raised, as a provider failing for good would;
- ``Delay(seconds, then)``: wait, then answer with ``then``;
- ``Cut(text, stop_reason)``: a text answer the provider stopped at its output limit
  (``stop_reason`` as the SDK says it: "max_tokens", "length", "MAX_TOKENS");
- ``echo_prompt``: the request's last message said back, as small models do;
- ``OFFLINE``: the offline provider's answer;
- an ``LLMResult``: returned as it is;
- a function of the request that returns any of the above.

    fake = ScriptedProvider()
    fake.enqueue(["not json", good_json], agent="moderator", purpose="synthesis")
    fake.always(ProviderError("HTTP 500"), agent="critic")      # whenever no queue has a reply
    teams = build_teams(settings, lambda name, cfg: fake)
    ...
    fake.requests_for("moderator", "synthesis")[1].messages[-1].content
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from cvagents.clock import stopwatch
from cvagents.llm.base import LLMRequest, LLMResult, Provider, ToolCall, Usage
from cvagents.offline.provider import MODEL as OFFLINE_MODEL
from cvagents.offline.provider import OfflineProvider

__all__ = ["OFFLINE", "Cut", "Delay", "ScriptedProvider", "echo_prompt", "synthesis_json"]


class _Offline:
    def __repr__(self) -> str:
        return "OFFLINE"


OFFLINE: Any = _Offline()  # the reply "answer as the built-in offline provider would"


@dataclass(frozen=True)
class Delay:
    """Wait ``seconds`` (real time), then answer with ``then``."""

    seconds: float
    then: Any = OFFLINE


@dataclass(frozen=True)
class Cut:
    """A text answer stopped at the output limit, with the provider's word for it."""

    text: str
    stop_reason: str = "max_tokens"


def echo_prompt(request: LLMRequest) -> str:
    """The reply of a model that repeats the prompt back instead of answering it."""
    return request.messages[-1].content


_Key = tuple[str | None, str | None]  # (agent, purpose); None: any


def synthesis_json(actions: Iterable[dict], decisions: Iterable[dict] = ()) -> str:
    """A moderator's synthesis as the meeting expects it: ``{"decisions": [...], "actions": [...]}``."""
    return json.dumps({"decisions": list(decisions), "actions": list(actions)})


class ScriptedProvider(Provider):
    """A provider that plays back scripted replies; see the module docstring.

    ``requests``: every request received, in order (across all agents and threads);
    ``max_in_flight``: the most calls that were running at once; ``closed``: ``close()`` was called.
    """

    def __init__(self, *replies: Any, name: str = "scripted", model: str = "scripted-1", otherwise: Any = OFFLINE):
        self.name, self.model = name, model
        self.otherwise = otherwise
        self.requests: list[LLMRequest] = []
        self.max_in_flight = 0
        self.closed = False
        self._in_flight = 0
        self._queues: dict[_Key, deque[Any]] = {}
        self._always: dict[_Key, Any] = {}
        self._fail_from: tuple[int, BaseException] | None = None
        self._lock = threading.Lock()
        self._offline = OfflineProvider()
        if replies:
            self.enqueue(replies)

    @classmethod
    def as_offline(cls, *replies: Any, otherwise: Any = OFFLINE) -> ScriptedProvider:
        """Named as the offline provider is (``offline``, its model): for a test where the fake
        stands in for it, e.g. as ``build_provider(offline_provider=...)`` (its calls cost $0)."""
        return cls(*replies, name="offline", model=OFFLINE_MODEL, otherwise=otherwise)

    # ---- scripting

    def enqueue(
        self, replies: Iterable[Any], *, agent: str | None = None, purpose: str | None = None
    ) -> ScriptedProvider:
        """Queue replies for ``agent`` and/or ``purpose`` (None: any), taken one per call, in order."""
        with self._lock:
            self._queues.setdefault((agent, purpose), deque()).extend(replies)
        return self

    def always(self, reply: Any, *, agent: str | None = None, purpose: str | None = None) -> ScriptedProvider:
        """The reply for every such call that no queue answers."""
        with self._lock:
            self._always[(agent, purpose)] = reply
        return self

    def fail_from(self, n: int, error: BaseException) -> ScriptedProvider:
        """Every call from the ``n``-th on (counting all agents) raises ``error``: an outage, or
        (with a ``BaseException``) a process killed mid-run."""
        self._fail_from = (n, error)
        return self

    def requests_for(self, agent: str | None = None, purpose: str | None = None) -> list[LLMRequest]:
        return [
            r
            for r in self.requests
            if (agent is None or r.agent == agent) and (purpose is None or r.purpose == purpose)
        ]

    # ---- the provider

    def complete(self, request: LLMRequest) -> LLMResult:
        with self._lock:
            self.requests.append(request)
            n = len(self.requests)
            reply = self._next(request, n)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            return self._answer(request, reply, n)
        finally:
            with self._lock:
                self._in_flight -= 1

    def close(self) -> None:
        self.closed = True

    def _next(self, request: LLMRequest, n: int) -> Any:
        if self._fail_from is not None and n >= self._fail_from[0]:
            return self._fail_from[1]
        keys: list[_Key] = [
            (request.agent, request.purpose),
            (request.agent, None),
            (None, request.purpose),
            (None, None),
        ]
        for k in keys:
            queue = self._queues.get(k)
            if queue:
                return queue.popleft()
        for k in keys:
            if k in self._always:
                return self._always[k]
        return self.otherwise

    def _answer(self, request: LLMRequest, reply: Any, n: int) -> LLMResult:
        sw = stopwatch()
        while isinstance(reply, Delay) or (callable(reply) and not isinstance(reply, type)):
            if isinstance(reply, Delay):
                time.sleep(reply.seconds)
                reply = reply.then
            else:
                reply = reply(request)
        if isinstance(reply, type) and issubclass(reply, BaseException):
            raise reply(f"scripted failure for {request.agent}")
        if isinstance(reply, BaseException):
            raise reply.with_traceback(None)
        if isinstance(reply, LLMResult):
            return reply
        if reply is OFFLINE:
            res = self._offline.complete(request)
            return replace(res, model=self.model, provider=self.name, latency_s=sw.elapsed())
        stop = ""
        if isinstance(reply, Cut):
            text, calls, stop = reply.text, (), reply.stop_reason
        elif isinstance(reply, str):
            text, calls = reply, ()
        elif isinstance(reply, list):
            text, calls = "", tuple(_tool_call(c, f"call_{n}_{i}") for i, c in enumerate(reply))
        else:
            raise TypeError(f"not a scripted reply: {reply!r}")
        prompt = request.system + "".join(m.content for m in request.messages)
        usage = Usage(max(1, len(prompt) // 4), max(1, len(text) // 4))
        stop = stop or ("tool_use" if calls else "end_turn")
        return LLMResult(text, calls, usage, self.model, self.name, sw.elapsed(), stop)


def _tool_call(c: ToolCall | tuple[str, dict], call_id: str) -> ToolCall:
    if isinstance(c, ToolCall):
        return c
    name, args = c
    return ToolCall(call_id, name, dict(args))
