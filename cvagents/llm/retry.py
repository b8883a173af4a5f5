"""One retry policy per provider, and one redacted error for a call that failed for good.

The OpenAI and Anthropic SDKs retry by themselves (``max_retries`` on their client): they honour
``Retry-After`` / ``retry-after-ms`` and ``x-should-retry``. Anthropic's would wait out any
``Retry-After`` (an hour, if asked), so both clients get ``refuse_long_waits``: an HTTP response
hook (the SDKs' public ``http_client``) that marks an error asking for more than
``MAX_RETRY_AFTER_S`` with ``x-should-retry: false``; the SDK then fails at once and the agent
fails over. ``call_sdk`` turns their final exception into our error, with the number of attempts
the SDK made (its ``x-stainless-retry-count`` request header, plus one).

Gemini's SDK has no notion of ``RetryInfo`` or ``Retry-After``, so ``call_with_retry`` is its
policy (its own ``HttpRetryOptions`` is set to one attempt): HTTP 408, 409, 429 and 5xx,
timeouts and connection errors are retried with exponential backoff and full jitter
(``uniform(0, min(max_delay, base * 2**n))``); a ``Retry-After`` header (seconds or an HTTP
date; also ``retry-after-ms``) or ``RetryInfo.retryDelay`` replaces the backoff. A delay longer
than ``max_retry_after_s`` is not waited out: the call fails at once, so the agent fails over to
the next model in its chain (``cvagents.llm.factory``). Anything else (400, 401, 403, 404, 422,
a malformed response ...) fails at once.

The final failure is a ``ProviderCallError`` (a ``ProviderError``) whose message names the
provider, the model, the status and the number of attempts, and holds only a short, redacted
excerpt of what the server said: never a key, even when the server echoes one back. Its
``retryable`` says the provider is unavailable for now (retries exhausted, or told to wait too
long) rather than refusing the request: that is what a failover is for.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from enum import StrEnum
from typing import Any, TypeVar

from cvagents.llm.base import ProviderError
from cvagents.secrets import redact

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 409, 429})
MAX_RETRY_AFTER_S = 60.0  # asked to wait longer than this: fail over rather than wait


def is_retryable_status(status: int | None) -> bool:
    return status is not None and (status in RETRYABLE_STATUS or 500 <= status <= 599)


class FailureKind(StrEnum):
    """What went wrong with one attempt."""

    HTTP = "http"  # the server answered with an error status (``Failure.status``)
    TIMEOUT = "timeout"  # no answer within the call's timeout
    CONNECTION = "connection"  # the server could not be reached, or dropped the connection
    OTHER = "other"  # anything else (a malformed response, a bug in the SDK): never retried


@dataclass(frozen=True)
class Failure:
    """One failed attempt, as the provider classified it (``status`` is set for ``HTTP``)."""

    kind: FailureKind
    status: int | None = None
    retry_after_s: float | None = None
    detail: str = ""
    attempts: int | None = None  # attempts the SDK itself made (its own retries), if known

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FailureKind(self.kind))  # a plain "http" is accepted too

    @property
    def retryable(self) -> bool:
        if self.kind in (FailureKind.TIMEOUT, FailureKind.CONNECTION):
            return True
        if self.kind is FailureKind.HTTP:
            return is_retryable_status(self.status)
        return False

    def describe(self) -> str:
        if self.kind is FailureKind.HTTP:
            return f"HTTP {self.status}"
        if self.kind is FailureKind.TIMEOUT:
            return "timed out"
        if self.kind is FailureKind.CONNECTION:
            return "connection failed"
        return "failed"


class ProviderCallError(ProviderError):
    """A call failed for good. Carries what happened, never the request or a key."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        model: str,
        status: int | None,
        attempts: int,
        kind: FailureKind,
        retryable: bool,
        retry_after_s: float | None = None,
    ):
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.provider = provider
        self.model = model
        self.status = status
        self.attempts = attempts
        self.kind = kind
        self.retryable = retryable


def parse_retry_after(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (delta-seconds or HTTP date)."""
    if not headers:
        return None
    try:
        get = headers.get
    except AttributeError:
        return None
    ms = get("retry-after-ms") or get("Retry-After-Ms")
    if ms:
        try:
            v = float(ms) / 1000.0
            if v >= 0:
                return v
        except ValueError:
            pass
    raw = get("retry-after") or get("Retry-After")
    if not raw:
        return None
    raw = raw.strip()
    try:
        v = float(raw)
        return v if v >= 0 else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now_ts = time.time() if now is None else now
    return max(0.0, when.timestamp() - now_ts)


def parse_duration(value: Any) -> float | None:
    """``"23s"`` / ``"1.5s"`` (protobuf Duration JSON) -> seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value.endswith("s"):
        try:
            return float(value[:-1])
        except ValueError:
            return None
    return None


@dataclass
class RetryPolicy:
    """How often and how long to retry. ``sleep`` and ``rng`` are injectable for tests."""

    max_retries: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0
    max_retry_after_s: float = MAX_RETRY_AFTER_S  # told to wait longer: fail now (and fail over) instead
    sleep: Callable[[float], None] = time.sleep
    rng: Callable[[], float] = random.random

    def backoff(self, retry_index: int) -> float:
        """Full jitter: uniform in [0, min(max_delay, base * 2**retry_index)]."""
        ceiling = min(self.max_delay_s, self.base_delay_s * (2 ** min(retry_index, 30)))
        return self.rng() * ceiling

    def delay_for(self, failure: Failure, retry_index: int) -> float:
        if failure.retry_after_s is not None:
            return max(0.0, failure.retry_after_s)
        return self.backoff(retry_index)

    def waits_out(self, failure: Failure) -> bool:
        """Whether a retry may wait as long as the server asked (not past ``max_retry_after_s``)."""
        return failure.retry_after_s is None or failure.retry_after_s <= self.max_retry_after_s


def excerpt(text: Any, limit: int = 200) -> str:
    """A short, single-line, redacted excerpt of a server's error text."""
    s = redact(text)
    s = " ".join(s.split())
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return redact(s)  # the cut may not split a key shape into something unrecognisable: re-check


def call_with_retry(
    fn: Callable[[], T],
    *,
    classify: Callable[[BaseException], Failure],
    policy: RetryPolicy,
    provider: str,
    model: str,
    timeout_s: float | None = None,
    secrets: tuple[str, ...] = (),
) -> T:
    """Run ``fn`` until it succeeds or the policy gives up; raise ``ProviderCallError`` then.

    ``secrets`` are extra values (the call's key) scrubbed from the message on top of
    ``redact``'s registry.
    """
    attempts = 0
    total = policy.max_retries + 1
    while True:
        attempts += 1
        try:
            return fn()
        except Exception as exc:  # classified below; anything unknown fails at once
            failure = classify(exc)
        if failure.retryable and attempts < total and policy.waits_out(failure):
            delay = policy.delay_for(failure, attempts - 1)
            log.info(
                "%s %s: %s (attempt %d of %d), retrying in %.2fs",
                provider,
                model,
                failure.describe(),
                attempts,
                total,
                delay,
            )
            policy.sleep(delay)
            continue
        raise _final_error(failure, provider, model, attempts, timeout_s, secrets) from None


def refuse_long_waits(max_wait_s: float = MAX_RETRY_AFTER_S) -> Callable[[Any], None]:
    """An httpx response hook: an error response asking to wait more than ``max_wait_s`` gets
    ``x-should-retry: false``, so the SDK gives up at once instead of sleeping."""

    def hook(response: Any) -> None:
        if response.status_code >= 400:
            wait = parse_retry_after(response.headers)
            if wait is not None and wait > max_wait_s:
                response.headers["x-should-retry"] = "false"

    return hook


def call_sdk(
    fn: Callable[[], T],
    *,
    classify: Callable[[BaseException], Failure],
    provider: str,
    model: str,
    timeout_s: float | None = None,
    secrets: tuple[str, ...] = (),
) -> T:
    """Run ``fn`` (an SDK call that retries by itself); its final exception becomes a redacted
    ``ProviderCallError`` naming the attempts the SDK made."""
    try:
        return fn()
    except Exception as exc:  # classified below
        failure = classify(exc)
    raise _final_error(failure, provider, model, failure.attempts or 1, timeout_s, secrets) from None


def sdk_attempts(exc: BaseException) -> int | None:
    """Attempts an OpenAI/Anthropic SDK made for the request that raised ``exc``: its
    ``x-stainless-retry-count`` header on the last request, plus one."""
    response = getattr(exc, "response", None)
    request = getattr(response, "request", None) if response is not None else getattr(exc, "request", None)
    try:
        raw = request.headers.get("x-stainless-retry-count") if request is not None else None
        return int(raw) + 1 if raw is not None else None
    except (AttributeError, RuntimeError, TypeError, ValueError):
        return None


def _final_error(
    failure: Failure, provider: str, model: str, attempts: int, timeout_s: float | None, secrets: tuple[str, ...]
) -> ProviderCallError:
    what = failure.describe()
    if failure.kind is FailureKind.TIMEOUT and timeout_s is not None:
        what = f"timed out after {timeout_s:g}s"
    plural = "attempt" if attempts == 1 else "attempts"
    if failure.retryable:
        tail = f"after {attempts} {plural} (giving up)"
    else:
        tail = f"after {attempts} {plural} (not retryable)"
    msg = f"{provider} model {model!r}: {what} {tail}"
    if failure.retry_after_s is not None:
        msg += f" (the server asked to wait {failure.retry_after_s:g}s)"
    detail = failure.detail
    for s in secrets:
        if s:
            detail = detail.replace(s, "[REDACTED]")
    detail = excerpt(detail)
    if detail:
        msg += f": {detail}"
    for s in secrets:  # belt and braces: the model name or anything else could not carry it
        if s:
            msg = msg.replace(s, "[REDACTED]")
    return ProviderCallError(
        redact(msg),
        provider=provider,
        model=model,
        status=failure.status,
        attempts=attempts,
        kind=failure.kind,
        retryable=failure.retryable,
        retry_after_s=failure.retry_after_s,
    )
