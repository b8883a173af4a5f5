"""From an agent's config to the ``Provider`` it talks to.

``build_provider`` returns a ``ManagedProvider``: the agent's real provider (or the offline one)
wrapped so that every call

- is held to the budgets: a call whose worst-case estimate would pass the meeting's or the
  day's budget is not made; the agent drops to its ``fallback_model`` on the same provider,
  then to the offline provider, and each step is recorded in the ledger as a ``Downgrade``
  (agent, from model, to model, which budget) for the planning summary;
- fails over along the same chain when a provider is unavailable: its SDK's retries are
  exhausted, or the server asks to wait longer than the retry policy will (a long
  ``Retry-After``); the step is recorded the same way, as a ``Downgrade`` with ``budget
  "failover"`` and the (redacted) error as ``reason``, so the summary and ``status`` show it.
  A provider told to wait is skipped (and the skip recorded) until that wait is over;
- is recorded in the ledger with its usage and cost (offline calls cost 0);
- gives back an answer of bounded size: text past ``max_tokens × CHARS_PER_TOKEN_BOUND``
  characters is cut, with a note at the cut and ``stop_reason`` ``"cut"`` (``bounded_answer``),
  so a server that ignores ``max_tokens`` cannot put megabytes into the journal and the prompts.

No key for the agent's provider: the offline provider stands in, with a visible warning
(``logging.warning`` and ``ManagedProvider.warnings`` / the caller's ``warnings`` list), and
``ManagedProvider.fallback`` says why, for the run's log, reports and status;
``strict=True`` makes that a ``MissingKeyError`` instead.

The meeting a call counts toward: ``request.context["meeting_id"]`` if the caller put it there,
else ``ledger.meeting(...)`` / ``ledger.set_meeting(...)``; without one only the day budget
applies (executive calls). The day is ``request.context["day"]`` or ``ledger.today()``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol

from cvagents.config.prices import price_for
from cvagents.llm import spans
from cvagents.llm.base import LLMRequest, LLMResult, Provider, ProviderConfigError, ProviderError, SDKProvider
from cvagents.llm.call_cost import estimate_call_usd
from cvagents.llm.cost import FAILOVER, CostLedger, Downgrade, Reservation
from cvagents.llm.retry import ProviderCallError, RetryPolicy
from cvagents.secrets import PROVIDER_KEY_NAMES, KeyStore, register_secret

log = logging.getLogger(__name__)

BASE_URL_ENV = {
    "anthropic": "ANTHROPIC_BASE_URL",
    "openai": "OPENAI_BASE_URL",
    "gemini": "GOOGLE_GEMINI_BASE_URL",
}


class MissingKeyError(ProviderConfigError):
    """``strict`` mode: an agent's provider has no API key."""


class _Keys(Protocol):
    def get(self, name: str, default: str | None = None) -> str | None: ...


def _cfg(value: Any, default: Any) -> Any:
    return default if value is None else value


def _make_real(
    provider: str,
    model: str,
    *,
    api_key: str | None,
    base_url: str | None,
    timeout_s: float,
    max_tokens: int | None,
    policy: RetryPolicy,
) -> Any:
    """The SDK-backed provider; its module (and so its SDK) is imported only here, when the first
    agent on it is built. OpenAI and Anthropic retry in their SDK (``policy.max_retries``);
    Gemini's SDK cannot read ``Retry-After``/``RetryInfo``, so ``policy`` governs it."""
    if provider == "anthropic":
        from cvagents.llm.anthropic_provider import AnthropicProvider

        return AnthropicProvider(
            model,
            api_key=api_key or "",
            base_url=base_url,
            timeout_s=timeout_s,
            max_retries=policy.max_retries,
            max_tokens=max_tokens,
        )
    if provider == "openai":
        from cvagents.llm.openai_provider import OpenAIProvider

        return OpenAIProvider(
            model,
            api_key=api_key,
            base_url=base_url,
            timeout_s=timeout_s,
            max_retries=policy.max_retries,
            max_tokens=max_tokens,
        )
    if provider == "gemini":
        from cvagents.llm.gemini_provider import GeminiProvider

        return GeminiProvider(
            model,
            api_key=api_key or "",
            base_url=base_url,
            timeout_s=timeout_s,
            max_tokens=max_tokens,
            retry_policy=policy,
        )
    raise ValueError(f"unknown provider {provider!r}")


# Characters per token an answer may use before it is cut: about twice what text in any
# language or code takes, so an answer within ``max_tokens`` is never cut.
CHARS_PER_TOKEN_BOUND = 8
CUT = "cut"  # the stop_reason of an answer that bounded_answer cut


def bounded_answer(result: LLMResult, max_tokens: int) -> LLMResult:
    """``result`` with its text cut at ``max_tokens × CHARS_PER_TOKEN_BOUND`` characters, the
    cut said at its end (and in ``stop_reason``); an answer within the bound, unchanged."""
    limit = max(1, max_tokens) * CHARS_PER_TOKEN_BOUND
    n = len(result.text)
    if n <= limit:
        return result
    note = (
        f"[cut by cvagents: the answer held {n} characters; the bound is {limit} "
        f"({max_tokens} max_tokens × {CHARS_PER_TOKEN_BOUND})]"
    )
    log.warning("%s (%s) answered %d characters: %s", result.provider, result.model, n, note)
    return dataclasses.replace(result, text=result.text[:limit] + "\n" + note, stop_reason=CUT)


class ManagedProvider(Provider):
    """A ``Provider`` with budgets, fallbacks and cost accounting around the real one.

    ``name`` / ``model``: the provider the agent normally uses (``offline`` when it stood in for
    a missing key). ``chain``: the providers tried in order (primary, fallback model, offline).
    ``fallback``: why the offline provider serves the agent instead of the one meeting.yaml
    names (e.g. ``no API key (ANTHROPIC_API_KEY)``); None when it does not.
    """

    def __init__(
        self,
        agent: str,
        chain: list[Any],
        *,
        ledger: CostLedger | None,
        pricing: Mapping[str, Any] | None,
        budgets: Any,
        warnings: list[str],
        fallback: str | None = None,
    ):
        self.agent = agent
        self.chain = chain
        self.primary = chain[0]
        self.name: str = self.primary.name
        self.model: str = self.primary.model
        self.ledger = ledger
        self.pricing = pricing
        self.budgets = budgets
        self.warnings = warnings
        self.fallback = fallback
        self._resting: dict[int, tuple[float, str]] = {}  # chain index -> (monotonic until, why)

    def _scope(self, request: LLMRequest) -> tuple[str | None, str | None]:
        ctx = request.context if isinstance(request.context, Mapping) else {}
        meeting = ctx.get("meeting_id")
        if meeting is None and self.ledger is not None:
            meeting = self.ledger.current_meeting()
        day = ctx.get("day")
        return (str(meeting) if meeting is not None else None), (str(day) if day is not None else None)

    def _estimate(self, p: Any, request: LLMRequest) -> float:
        cap = p.effective_max_tokens(request) if isinstance(p, SDKProvider) else request.max_tokens
        return estimate_call_usd(p.model, request, self.pricing, max_tokens=cap)

    @spans.agent_call
    def complete(self, request: LLMRequest) -> LLMResult:
        ledger = self.ledger
        meeting_id, day = self._scope(request)
        if ledger is not None and day is None:
            day = ledger.today()
        for i, p in enumerate(self.chain):
            is_last = i == len(self.chain) - 1
            resting = self._resting.get(i)
            if resting is not None and not is_last:
                if time.monotonic() < resting[0]:
                    self._step_down(i, FAILOVER, meeting_id, day, reason=resting[1])
                    continue
                self._resting.pop(i, None)
            reservation: Reservation | None = None
            if ledger is not None and not is_last:
                est = self._estimate(p, request)
                held = ledger.reserve(est, meeting_id, day, budgets=self.budgets)
                if isinstance(held, str):  # would pass a budget: next in the chain
                    self._step_down(i, held, meeting_id, day, estimated_usd=est)
                    continue
                reservation = held
            try:
                result = p.complete(request)
            except BaseException as exc:
                if reservation is not None:
                    ledger.release(reservation)  # type: ignore[union-attr]
                if is_last or not isinstance(exc, ProviderCallError) or not exc.retryable:
                    raise
                reason = str(exc)
                if exc.retry_after_s:  # told to wait: skip this provider until then
                    self._resting[i] = (time.monotonic() + exc.retry_after_s, f"resting as asked: {reason}")
                self._step_down(i, FAILOVER, meeting_id, day, reason=reason)
                continue
            if ledger is not None:
                cost = 0.0 if p.name == "offline" else None
                call = ledger.record_call(
                    agent=self.agent,
                    provider=result.provider or p.name,
                    model=p.model,
                    usage=result.usage,
                    pricing=self.pricing,
                    cost_usd=cost,
                    meeting_id=meeting_id,
                    day=day,
                    reservation=reservation,
                )
                spans.cost(call.cost_usd)
            return bounded_answer(result, request.max_tokens)
        raise ProviderError(f"{self.agent}: no provider left to call")  # pragma: no cover - offline is last

    def _step_down(
        self,
        i: int,
        budget: str,
        meeting_id: str | None,
        day: str | None,
        *,
        estimated_usd: float = 0.0,
        reason: str = "",
    ) -> None:
        """Record that chain[i] does not serve the call (a budget it would pass, or ``FAILOVER``
        with the provider's error) and chain[i + 1] is asked instead."""
        p, nxt = self.chain[i], self.chain[i + 1]
        d = Downgrade(
            agent=self.agent,
            meeting_id=meeting_id,
            day=day or "",
            from_provider=p.name,
            from_model=p.model,
            to_provider=nxt.name,
            to_model=nxt.model,
            budget=budget,
            estimated_usd=estimated_usd,
            reason=reason,
        )
        if self.ledger is not None:
            self.ledger.record_downgrade(d)
        else:
            log.warning("%s", d.describe())

    def close(self) -> None:
        """Close every provider in the chain; one that fails to close does not keep the others open."""
        for p in self.chain:
            try:
                p.close()
            except Exception:  # noqa: BLE001 - logged, with its traceback; shutting down goes on
                log.warning("closing %s %s failed", p.name, p.model, exc_info=True)

    def __repr__(self) -> str:
        return f"ManagedProvider(agent={self.agent!r}, chain={[f'{p.name}:{p.model}' for p in self.chain]})"


def build_provider(
    agent_name: str,
    agent_cfg: Any,
    defaults: Any,
    *,
    mode: Literal["configured", "offline"] = "configured",
    keys: KeyStore | _Keys | Mapping[str, str] | None = None,
    strict: bool = False,
    ledger: CostLedger | None = None,
    pricing: Mapping[str, Any] | None = None,
    budgets: Any = None,
    offline_provider: Provider,
    warnings: list[str] | None = None,
    retry_sleep: Callable[[float], None] | None = None,
) -> ManagedProvider:
    """The provider ``agent_name`` talks to, per its ``AgentConfig`` and the ``CallDefaults``.

    ``offline_provider``: the built-in rule-based team (``cvagents.offline``, a layer above this
    one, so the caller passes it in); ``mode="offline"`` puts the agent on it. ``keys``: a ``KeyStore`` (default:
    a fresh one over the environment / ``.env`` / Colab) or any mapping. ``budgets`` default to
    the ledger's. Warnings (a missing key) are logged, appended to ``warnings`` if given, and
    kept on the result's ``.warnings``. ``retry_sleep`` replaces ``time.sleep`` between retries
    (tests).
    """
    own_notes: list[str] = []

    def warn(msg: str) -> None:
        log.warning(msg)
        own_notes.append(msg)
        if warnings is not None:
            warnings.append(msg)

    offline = offline_provider
    if budgets is None and ledger is not None:
        budgets = ledger.budgets

    def managed(chain: list[Any], fallback: str | None = None) -> ManagedProvider:
        return ManagedProvider(
            agent_name,
            chain,
            ledger=ledger,
            pricing=pricing,
            budgets=budgets,
            warnings=own_notes,
            fallback=fallback,
        )

    provider = agent_cfg.provider
    if mode == "offline" or provider == "offline":
        return managed([offline])
    if mode != "configured":
        raise ValueError(f"mode must be 'configured' or 'offline', got {mode!r}")

    if keys is None:
        keys = KeyStore()
    key_names = (agent_cfg.api_key_env,) if agent_cfg.api_key_env else PROVIDER_KEY_NAMES.get(provider, ())
    api_key = None
    for n in key_names:
        v = keys.get(n)
        if v:
            api_key = v
            break
    register_secret(api_key)

    base_url = agent_cfg.base_url or keys.get(BASE_URL_ENV[provider]) or None

    if not api_key and not (provider == "openai" and base_url):
        names = " or ".join(key_names)
        if strict:
            raise MissingKeyError(
                f"agent {agent_name!r} uses {provider} ({agent_cfg.model}) but no API key was found: "
                f"set {names} in the environment, a .env file or Colab Secrets "
                f"(or run without --strict to fall back to the offline provider)"
            )
        warn(
            f"agent {agent_name!r}: no API key for {provider} ({names} not set); "
            f"using the offline provider instead of {agent_cfg.model}"
        )
        return managed([offline], fallback=f"no API key ({names})")

    timeout_s = float(_cfg(agent_cfg.timeout_s, defaults.timeout_s))
    max_retries = int(_cfg(agent_cfg.max_retries, defaults.max_retries))
    max_tokens = int(_cfg(agent_cfg.max_tokens, defaults.max_tokens))
    policy = RetryPolicy(max_retries=max_retries)
    if retry_sleep is not None:
        policy.sleep = retry_sleep

    primary = _make_real(
        provider,
        agent_cfg.model,
        api_key=api_key,
        base_url=base_url,
        timeout_s=timeout_s,
        max_tokens=max_tokens,
        policy=policy,
    )
    chain: list[Any] = [primary]
    if agent_cfg.fallback_model and agent_cfg.fallback_model != agent_cfg.model:
        chain.append(primary.with_model(agent_cfg.fallback_model))
    chain.append(offline)
    if ledger is not None and _has_limits(budgets):
        for p in chain[:-1]:
            if price_for(p.model, pricing) is None:
                warn(
                    f"agent {agent_name!r}: no price for model {p.model!r} in pricing; its calls count as $0, "
                    f"so the budgets cannot hold it back"
                )
    return managed(chain)


def _has_limits(budgets: Any) -> bool:
    if budgets is None:
        return False
    if isinstance(budgets, Mapping):
        return any(v is not None for v in budgets.values())
    return getattr(budgets, "per_meeting_usd", None) is not None or getattr(budgets, "per_day_usd", None) is not None
