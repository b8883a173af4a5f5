"""The shared retry policy: what is retried, how long it waits, and how it gives up."""

from __future__ import annotations

import email.utils
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from llm_servers import Sleeps  # noqa: E402

from cvagents.llm.base import ProviderError  # noqa: E402
from cvagents.llm.retry import (
    Failure,
    ProviderCallError,
    RetryPolicy,
    call_with_retry,
    is_retryable_status,
    parse_duration,
    parse_retry_after,
)


class Boom(Exception):
    def __init__(self, failure: Failure):
        super().__init__(failure.detail)
        self.failure = failure


def classify(exc: BaseException) -> Failure:
    return exc.failure if isinstance(exc, Boom) else Failure("other", detail=str(exc))


def scripted(*outcomes):
    """A function that raises/returns the outcomes in order, counting its calls."""
    calls = {"n": 0}

    def fn():
        out = outcomes[calls["n"]]
        calls["n"] += 1
        if isinstance(out, Failure):
            raise Boom(out)
        return out

    return fn, calls


def run(fn, sleeps, *, max_retries=3, timeout_s=None, secrets=()):
    return call_with_retry(
        fn,
        classify=classify,
        policy=RetryPolicy(max_retries=max_retries, sleep=sleeps, rng=lambda: 1.0),
        provider="openai",
        model="gpt-x",
        timeout_s=timeout_s,
        secrets=secrets,
    )


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529])
def test_retryable_statuses(status):
    sleeps = Sleeps()
    fn, calls = scripted(Failure("http", status=status), "ok")
    assert run(fn, sleeps) == "ok"
    assert calls["n"] == 2 and len(sleeps) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_non_retryable_statuses_fail_at_once(status):
    sleeps = Sleeps()
    fn, calls = scripted(Failure("http", status=status, detail="nope"), "ok")
    with pytest.raises(ProviderError) as ei:
        run(fn, sleeps)
    assert calls["n"] == 1 and sleeps == []
    assert f"HTTP {status}" in str(ei.value) and "1 attempt (not retryable)" in str(ei.value)
    assert not is_retryable_status(status)


@pytest.mark.parametrize("kind", ["timeout", "connection"])
def test_transport_failures_are_retried(kind):
    sleeps = Sleeps()
    fn, calls = scripted(Failure(kind), Failure(kind), "ok")
    assert run(fn, sleeps) == "ok"
    assert calls["n"] == 3


def test_unknown_errors_are_not_retried():
    fn, calls = scripted(Failure("other", detail="ValueError: bad"))
    with pytest.raises(ProviderCallError):
        run(fn, Sleeps())
    assert calls["n"] == 1


def test_backoff_is_exponential_with_full_jitter_and_capped():
    p = RetryPolicy(base_delay_s=0.5, max_delay_s=4.0, rng=lambda: 1.0)
    assert [p.backoff(i) for i in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    p.rng = lambda: 0.0
    assert p.backoff(3) == 0.0  # full jitter reaches down to zero
    import random

    p = RetryPolicy(base_delay_s=0.5, max_delay_s=4.0, rng=random.Random(7).random)
    delays = [p.backoff(2) for _ in range(200)]
    assert all(0.0 <= d <= 2.0 for d in delays) and max(delays) - min(delays) > 1.0


def test_retry_after_replaces_backoff_and_a_long_one_gives_up_at_once():
    sleeps = Sleeps()
    fn, calls = scripted(
        Failure("http", status=429, retry_after_s=2.5), Failure("http", status=503, retry_after_s=300), "ok"
    )
    with pytest.raises(ProviderCallError) as ei:
        call_with_retry(
            fn,
            classify=classify,
            policy=RetryPolicy(max_retries=3, sleep=sleeps, max_retry_after_s=30),
            provider="p",
            model="m",
        )
    assert sleeps == [2.5]  # 300 s is not waited out: the caller fails over instead
    assert calls["n"] == 2
    err = ei.value
    assert err.retryable and err.retry_after_s == 300 and err.attempts == 2
    assert "the server asked to wait 300s" in str(err)


def test_gives_up_after_max_retries_with_clear_message():
    sleeps = Sleeps()
    fn, calls = scripted(*[Failure("http", status=500, detail="upstream exploded")] * 5)
    with pytest.raises(ProviderCallError) as ei:
        run(fn, sleeps, max_retries=3)
    e = ei.value
    assert calls["n"] == 4 and len(sleeps) == 3
    assert str(e) == "openai model 'gpt-x': HTTP 500 after 4 attempts (giving up): upstream exploded"
    assert (e.provider, e.model, e.status, e.attempts, e.kind, e.retryable) == ("openai", "gpt-x", 500, 4, "http", True)
    assert e.__cause__ is None and e.__suppress_context__


def test_timeout_message_names_the_timeout():
    fn, _ = scripted(Failure("timeout"), Failure("timeout"))
    with pytest.raises(ProviderCallError, match=r"timed out after 1.5s after 2 attempts"):
        run(fn, Sleeps(), max_retries=1, timeout_s=1.5)


def test_zero_retries_means_one_attempt():
    fn, calls = scripted(Failure("http", status=503))
    with pytest.raises(ProviderCallError, match="1 attempt "):
        run(fn, Sleeps(), max_retries=0)
    assert calls["n"] == 1


def test_secrets_never_reach_the_message():
    planted = "plain-looking-secret-value-42"
    fn, _ = scripted(Failure("http", status=401, detail=f"invalid key {planted} (also sk-abcdefghijklmnop)"))
    with pytest.raises(ProviderCallError) as ei:
        run(fn, Sleeps(), secrets=(planted,))
    assert planted not in str(ei.value) and "sk-abcdefghijklmnop" not in str(ei.value)
    assert "[REDACTED]" in str(ei.value)


def test_long_details_are_shortened():
    fn, _ = scripted(Failure("http", status=400, detail="x" * 5000))
    with pytest.raises(ProviderCallError) as ei:
        run(fn, Sleeps())
    assert len(str(ei.value)) < 400


def test_parse_retry_after_seconds_date_and_ms():
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 12, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=now) == pytest.approx(12, abs=1)
    past = email.utils.formatdate(now - 100, usegmt=True)
    assert parse_retry_after({"retry-after": past}, now=now) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({"retry-after": "-4"}) is None
    assert parse_retry_after({}) is None and parse_retry_after(None) is None


def test_parse_duration():
    assert parse_duration("7s") == 7.0 and parse_duration("0.5s") == 0.5 and parse_duration(3) == 3.0
    assert parse_duration("later") is None
