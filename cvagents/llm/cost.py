"""What each LLM call cost, the running totals, and the budgets they are held to.

Each call is priced by ``cvagents.llm.call_cost`` (prices, cache reads and writes, savings).

``CostLedger`` is thread-safe. Each call reserves its worst-case estimate before it is made
(``reserve``), so concurrent calls cannot together pass a budget, then ``commit``s its real
cost (or ``release``s the hold when it failed).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from cvagents.llm.base import Usage
from cvagents.llm.call_cost import call_cost_usd, usd

log = logging.getLogger(__name__)

PER_MEETING = "per_meeting_usd"
PER_DAY = "per_day_usd"
FAILOVER = "failover"  # a Downgrade's ``budget`` when the provider failed, not a budget


def utc_day() -> str:
    return datetime.now(UTC).date().isoformat()


@dataclass(frozen=True)
class CallRecord:
    agent: str
    meeting_id: str | None
    day: str
    provider: str
    model: str
    usage: Usage
    cost_usd: float
    priced: bool
    saved_usd: float = 0.0  # what prompt caching saved on this call
    ts: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["usage"] = self.usage.as_dict()
        return d


@dataclass(frozen=True)
class Downgrade:
    """A call that would have passed ``budget`` went to ``to_model`` instead of ``from_model``;
    or, with ``budget == FAILOVER``, ``from_model`` failed (``reason``) and the call went on."""

    agent: str
    meeting_id: str | None
    day: str
    from_provider: str
    from_model: str
    to_provider: str
    to_model: str
    budget: str  # "per_meeting_usd" | "per_day_usd" | "failover"
    estimated_usd: float
    ts: float = field(default_factory=time.time)
    reason: str = ""  # a failover's cause (a redacted provider error)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        if self.budget == FAILOVER:
            return f"{self.agent}: {self.from_model} -> {self.to_model} (failover: {self.reason})"
        where = f"meeting {self.meeting_id}" if self.budget == PER_MEETING else f"day {self.day}"
        return f"{self.agent}: {self.from_model} -> {self.to_model} ({self.budget} for {where} would have been passed)"


@dataclass
class Reservation:
    """A hold on the budget for one call in flight."""

    usd: float
    meeting_id: str | None
    day: str
    done: bool = False


class CostLedger:
    """Every call's usage and cost, totals per agent / meeting / day, budgets and downgrades.

    ``budgets``: a ``Budgets`` (or anything with ``per_meeting_usd`` / ``per_day_usd``; None
    fields mean no limit). ``today``: returns the day a call counts toward (default: the UTC
    date; pass the run's simulated clock). ``keep``: how many call records are kept in memory
    (totals are kept in full).
    """

    def __init__(self, budgets: Any = None, *, today: Callable[[], str] = utc_day, keep: int = 20000):
        self.budgets = budgets
        self.today = today
        self._lock = threading.RLock()
        self._calls: deque[CallRecord] = deque(maxlen=keep)
        self._downgrades: deque[Downgrade] = deque(maxlen=keep)
        self._by_agent: dict[str, float] = defaultdict(float)
        self._by_meeting: dict[str, float] = defaultdict(float)
        self._by_day: dict[str, float] = defaultdict(float)
        self._held_meeting: dict[str, float] = defaultdict(float)
        self._held_day: dict[str, float] = defaultdict(float)
        self._usage_by_agent: dict[str, Usage] = defaultdict(Usage)
        self._saved_by_agent: dict[str, float] = defaultdict(float)
        self._saved_by_meeting: dict[str, float] = defaultdict(float)
        self._unpriced: set[str] = set()
        self._warned: set[tuple[Any, ...]] = set()
        self._scope = threading.local()
        self._default_meeting: str | None = None
        self.n_calls = 0

    # ------------------------------------------------------------------ scope

    def set_meeting(self, meeting_id: str | None) -> None:
        """The meeting calls count toward when the caller does not say (process-wide)."""
        with self._lock:
            self._default_meeting = meeting_id

    def meeting(self, meeting_id: str | None) -> _MeetingScope:
        """``with ledger.meeting("m-0007"): ...``: calls from this thread count toward it."""
        return _MeetingScope(self, meeting_id)

    def current_meeting(self) -> str | None:
        stack = getattr(self._scope, "stack", None)
        if stack:
            return stack[-1]
        return self._default_meeting

    # --------------------------------------------------------------- budgets

    def _limits(self, budgets: Any) -> tuple[float | None, float | None]:
        b = budgets if budgets is not None else self.budgets
        if b is None:
            return None, None
        if isinstance(b, Mapping):
            return b.get(PER_MEETING), b.get(PER_DAY)
        return getattr(b, PER_MEETING, None), getattr(b, PER_DAY, None)

    def would_exceed(
        self, estimated_usd: float, meeting_id: str | None, day: str | None = None, *, budgets: Any = None
    ) -> str | None:
        """The budget (``"per_meeting_usd"`` / ``"per_day_usd"``) that spending ``estimated_usd``
        more would pass, counting calls in flight, or None."""
        day = day or self.today()
        per_meeting, per_day = self._limits(budgets)
        eps = 1e-12
        with self._lock:
            if per_meeting is not None and meeting_id is not None:
                spent = self._by_meeting.get(meeting_id, 0.0) + self._held_meeting.get(meeting_id, 0.0)
                if spent + estimated_usd > per_meeting + eps:
                    return PER_MEETING
            if per_day is not None:
                spent = self._by_day.get(day, 0.0) + self._held_day.get(day, 0.0)
                if spent + estimated_usd > per_day + eps:
                    return PER_DAY
        return None

    def reserve(
        self, estimated_usd: float, meeting_id: str | None, day: str | None = None, *, budgets: Any = None
    ) -> Reservation | str:
        """Atomically check and hold ``estimated_usd``: a ``Reservation``, or the name of the
        budget it would pass."""
        day = day or self.today()
        with self._lock:
            passed = self.would_exceed(estimated_usd, meeting_id, day, budgets=budgets)
            if passed:
                return passed
            if meeting_id is not None:
                self._held_meeting[meeting_id] += estimated_usd
            self._held_day[day] += estimated_usd
            return Reservation(estimated_usd, meeting_id, day)

    def release(self, res: Reservation) -> None:
        with self._lock:
            if res.done:
                return
            res.done = True
            if res.meeting_id is not None:
                self._held_meeting[res.meeting_id] = max(0.0, self._held_meeting[res.meeting_id] - res.usd)
            self._held_day[res.day] = max(0.0, self._held_day[res.day] - res.usd)

    # --------------------------------------------------------------- records

    def record_call(
        self,
        *,
        agent: str,
        provider: str,
        model: str,
        usage: Usage,
        pricing: Mapping[str, Any] | None = None,
        cost_usd: float | None = None,
        meeting_id: str | None = None,
        day: str | None = None,
        reservation: Reservation | None = None,
    ) -> CallRecord:
        """Record one call (its cost computed from ``pricing`` unless given) and settle its
        reservation."""
        day = reservation.day if reservation is not None else (day or self.today())
        if reservation is not None:
            meeting_id = reservation.meeting_id
        if cost_usd is None:
            computed = call_cost_usd(model, usage, pricing, provider)
            cost, priced, saved = float(computed), computed.priced, computed.saved
        else:
            cost, priced, saved = usd(cost_usd), True, 0.0
        rec = CallRecord(agent, meeting_id, day, provider, model, usage, cost, priced, saved)
        with self._lock:
            if reservation is not None:
                self.release(reservation)
            self._calls.append(rec)
            self.n_calls += 1
            self._by_agent[agent] = usd(self._by_agent[agent] + rec.cost_usd)
            self._by_day[day] = usd(self._by_day[day] + rec.cost_usd)
            self._saved_by_agent[agent] = usd(self._saved_by_agent[agent] + saved)
            if meeting_id is not None:
                self._by_meeting[meeting_id] = usd(self._by_meeting[meeting_id] + rec.cost_usd)
                self._saved_by_meeting[meeting_id] = usd(self._saved_by_meeting[meeting_id] + saved)
            self._usage_by_agent[agent] = self._usage_by_agent[agent] + usage
            if not priced and model not in self._unpriced:
                self._unpriced.add(model)
                log.warning("no price for model %r in pricing: its calls are counted as $0", model)
        return rec

    def record_downgrade(self, d: Downgrade) -> None:
        """Record a downgrade; logged as a warning the first time per agent, step, budget and
        meeting (or day), then at debug level."""
        scope = d.meeting_id if d.budget == PER_MEETING else d.day
        key = (d.agent, d.from_model, d.to_model, d.budget, scope)
        with self._lock:
            self._downgrades.append(d)
            first = key not in self._warned
            self._warned.add(key)
        log.log(logging.WARNING if first else logging.DEBUG, "budget: %s", d.describe())

    # ---------------------------------------------------------------- totals

    def spent(self, *, agent: str | None = None, meeting_id: str | None = None, day: str | None = None) -> float:
        """Total for one agent, meeting or day (exactly one of them), or everything."""
        with self._lock:
            if agent is not None:
                return self._by_agent.get(agent, 0.0)
            if meeting_id is not None:
                return self._by_meeting.get(meeting_id, 0.0)
            if day is not None:
                return self._by_day.get(day, 0.0)
            return usd(sum(self._by_day.values()))

    def saved(self, *, agent: str | None = None, meeting_id: str | None = None) -> float:
        """What prompt caching saved: for one agent, one meeting, or the whole run."""
        with self._lock:
            if agent is not None:
                return self._saved_by_agent.get(agent, 0.0)
            if meeting_id is not None:
                return self._saved_by_meeting.get(meeting_id, 0.0)
            return usd(sum(self._saved_by_agent.values()))

    def cached_tokens(self) -> int:
        """Input tokens read from the providers' prompt caches, all agents together."""
        with self._lock:
            return sum(u.cached_tokens for u in self._usage_by_agent.values())

    def totals_by_agent(self) -> dict[str, float]:
        with self._lock:
            return dict(self._by_agent)

    def totals_by_meeting(self) -> dict[str, float]:
        with self._lock:
            return dict(self._by_meeting)

    def totals_by_day(self) -> dict[str, float]:
        with self._lock:
            return dict(self._by_day)

    def usage_by_agent(self) -> dict[str, Usage]:
        with self._lock:
            return dict(self._usage_by_agent)

    def cost_by_agent(self, meeting_id: str, *, saved: bool = False) -> dict[str, float]:
        """What each agent's calls in one meeting cost in USD, to the micro-dollar (``saved``:
        what prompt caching saved on them instead)."""
        out: dict[str, float] = {}
        for c in self.calls(meeting_id=meeting_id):
            out[c.agent] = usd(out.get(c.agent, 0.0) + (c.saved_usd if saved else c.cost_usd))
        return out

    def calls(self, *, meeting_id: str | None = None, agent: str | None = None) -> list[CallRecord]:
        with self._lock:
            return [
                c
                for c in self._calls
                if (meeting_id is None or c.meeting_id == meeting_id) and (agent is None or c.agent == agent)
            ]

    def downgrades(self, *, meeting_id: str | None = None, day: str | None = None) -> list[Downgrade]:
        with self._lock:
            return [
                d
                for d in self._downgrades
                if (meeting_id is None or d.meeting_id == meeting_id) and (day is None or d.day == day)
            ]

    def downgrade_summary(self, *, meeting_id: str | None = None) -> list[str]:
        """One line per (agent, from, to, budget), with a count, saying whether it was a failover or a
        budget downgrade: the meeting's notes in the planning summary."""
        counts: dict[tuple[str, str, str, str], int] = {}
        examples: dict[tuple[str, str, str, str], Downgrade] = {}
        for d in self.downgrades(meeting_id=meeting_id):
            k = (d.agent, d.from_model, d.to_model, d.budget)
            counts[k] = counts.get(k, 0) + 1
            examples.setdefault(k, d)
        lines = []
        for k, n in counts.items():
            kind = "Failover" if k[3] == FAILOVER else "Budget downgrade"
            lines.append(f"{kind}: {examples[k].describe()}" + (f" ×{n}" if n > 1 else ""))
        return lines

    def unpriced_models(self) -> list[str]:
        with self._lock:
            return sorted(self._unpriced)

    # ----------------------------------------------------------- persistence

    def snapshot(self) -> dict[str, Any]:
        """Totals (not individual calls) as JSON-able data, to carry spend across a restart."""
        with self._lock:
            return {
                "by_agent": dict(self._by_agent),
                "by_meeting": dict(self._by_meeting),
                "by_day": dict(self._by_day),
                "downgrades": [d.as_dict() for d in self._downgrades],
                "unpriced_models": sorted(self._unpriced),
                "saved_by_agent": dict(self._saved_by_agent),
                "saved_by_meeting": dict(self._saved_by_meeting),
                "n_calls": self.n_calls,
                "usage_by_agent": {a: u.as_dict() for a, u in self._usage_by_agent.items()},
            }

    def restore(self, snap: Mapping[str, Any]) -> None:
        with self._lock:
            for src in ("by_agent", "by_meeting", "by_day", "saved_by_agent", "saved_by_meeting"):
                dst = getattr(self, "_" + src)
                for k, v in (snap.get(src) or {}).items():
                    dst[k] = usd(dst[k] + float(v))
            for d in snap.get("downgrades") or ():
                self._downgrades.append(Downgrade(**d))
            self._unpriced.update(snap.get("unpriced_models") or ())
            self.n_calls += int(snap.get("n_calls") or 0)
            for a, u in (snap.get("usage_by_agent") or {}).items():
                self._usage_by_agent[a] = self._usage_by_agent[a] + Usage(**u)


class _MeetingScope:
    def __init__(self, ledger: CostLedger, meeting_id: str | None):
        self.ledger, self.meeting_id = ledger, meeting_id

    def __enter__(self) -> CostLedger:
        st = self.ledger._scope
        if not hasattr(st, "stack"):
            st.stack = []
        st.stack.append(self.meeting_id)
        return self.ledger

    def __exit__(self, *exc: Any) -> None:
        self.ledger._scope.stack.pop()
