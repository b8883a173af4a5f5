"""Resume: what a session's journal says was done, half done and not done.

The coordinator writes a ``checkpoint`` record after each completed step (a meeting or a
heartbeat, its reports written): the whole coordinator state and the schedule. Resuming reads
the last checkpoint and the records after it (the *tail*), which describe at most one step:

* ``meeting_started`` without ``meeting_completed``: the meeting is held again with the state
  and summaries it was started with, and every agent response already journaled is reused
  (``ResponseMemo``), so no prompt is paid for twice;
* ``heartbeat_started`` without ``heartbeat_completed``: the actions it finished stay finished,
  the one it had started is replayed (``ActionReplay``, by ``cvagents.run.recorder``): journaled
  responses and tool results are reused, and a tool that was started but whose result was not
  journaled is checked against the world (the tool's ``repair`` hook) before the tool,
  idempotent on the action id, is run again;
* a step whose record is journaled but whose checkpoint is not: only its reports, timing and
  checkpoint are done again.

``scan`` reads the tail, ``restore`` rebuilds the run's progress from it, ``finish`` finishes
the step it shows under way. Reading is proportional to the tail, not to the journal:
``Journal.last("checkpoint")`` reads the newest segment first.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cvagents.config import Schedule as ScheduleConfig
from cvagents.durability.journal import Journal, Record
from cvagents.llm.base import Usage
from cvagents.llm.cost import CostLedger
from cvagents.rollout import deployment
from cvagents.run import schedule
from cvagents.run.progress import Progress, action_summary
from cvagents.workspace import Workspace

__all__ = [
    "ResponseMemo",
    "ActionReplay",
    "PendingMeeting",
    "PendingHeartbeat",
    "Tail",
    "scan",
    "restore",
    "recharge",
    "unfinished_step",
    "resume_info",
    "Steps",
    "finish",
    "clean_temps",
]

log = logging.getLogger("cvagents.run")


def sim_time(s: str) -> datetime:
    """A journaled simulated time (naive times are UTC)."""
    t = datetime.fromisoformat(s)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


class ResponseMemo:
    """Journaled agent responses by key, each handed out once, in journal order (a prompt asked
    twice in the same step, e.g. by a fallback moderator, gets the second answer second)."""

    def __init__(self) -> None:
        self._by_key: dict[tuple, deque[dict]] = defaultdict(deque)
        self._lock = threading.Lock()
        self.hits = 0

    def add(self, key: tuple, data: dict) -> None:
        self._by_key[key].append(data)

    def take(self, key: tuple) -> dict | None:
        with self._lock:
            q = self._by_key.get(key)
            if not q:
                return None
            self.hits += 1
            return q.popleft()

    def __len__(self) -> int:
        return sum(len(q) for q in self._by_key.values())


def meeting_key(d: dict) -> tuple:
    return (d.get("agent"), d.get("purpose"), d.get("prompt_hash"))


def action_key(d: dict) -> tuple:
    return (d.get("agent"), d.get("step"), d.get("prompt_hash"))


@dataclass
class ActionReplay:
    """An action that was started and not finished: what it had already done."""

    key: str
    started: dict  # the action_started record's data (holds the state the action was given)
    responses: ResponseMemo = field(default_factory=ResponseMemo)
    tools_started: list[dict] = field(default_factory=list)  # tool_started records, in order
    tools_done: list[dict] = field(default_factory=list)  # tool_call records, in order

    @property
    def state(self) -> dict:
        return self.started.get("state") or {}


@dataclass
class PendingMeeting:
    started: dict  # meeting_started data: meeting_id, number, time, state, earlier
    responses: ResponseMemo = field(default_factory=ResponseMemo)
    completed: dict | None = None  # meeting_completed data, if journaled
    timing: dict | None = None

    @property
    def time(self) -> datetime:
        return sim_time(self.started["time"])


@dataclass
class PendingHeartbeat:
    started: dict  # heartbeat_started data: heartbeat, heartbeat_id, time
    runs: list[dict] = field(default_factory=list)  # action_finished data, in order
    inflight: ActionReplay | None = None
    merged_before: int | None = None  # from metrics_collecting
    reviewed: bool = False  # the rollout controller's review after the actions was done
    completed: dict | None = None  # heartbeat_completed data
    timing: dict | None = None  # timing_changed journaled after it

    @property
    def time(self) -> datetime:
        return sim_time(self.started["time"])


@dataclass
class Tail:
    checkpoint: Record | None
    pending: PendingMeeting | PendingHeartbeat | None
    session_started: dict | None  # the first session_started record (only looked up without a checkpoint)
    finished: dict | None  # session_finished after the last checkpoint
    records: int  # records read after the checkpoint
    last_seq: int
    responses: list[dict] = field(default_factory=list)  # every agent_response after the checkpoint


def scan(journal: Journal) -> Tail:
    """The last checkpoint and the unfinished step after it."""
    cp = journal.last("checkpoint")
    since = cp.seq if cp else 0
    pending: PendingMeeting | PendingHeartbeat | None = None
    started = finished = None
    n = 0
    responses: list[dict] = []
    for r in journal.records(since_seq=since, include_archived=True):
        n += 1
        k, d = r.kind, r.data
        if k == "agent_response":
            responses.append(d)
        if k == "session_started" and started is None:
            started = d
        elif k == "session_finished":
            finished = d
        elif k == "meeting_started":
            pending = PendingMeeting(d)
        elif k == "heartbeat_started":
            pending = PendingHeartbeat(d)
        elif isinstance(pending, PendingMeeting):
            if k == "agent_response" and d.get("meeting_id") == pending.started["meeting_id"]:
                pending.responses.add(meeting_key(d), d)
            elif k == "meeting_completed":
                pending.completed = d
            elif k == "timing_changed":
                pending.timing = d
        elif isinstance(pending, PendingHeartbeat):
            hb = pending
            if k == "action_started":
                hb.inflight = ActionReplay(d["action_id"], d)
            elif k == "action_finished":
                hb.runs.append(d)
                hb.inflight = None
            elif hb.inflight is not None and d.get("action_id") == hb.inflight.key:
                if k == "agent_response":
                    hb.inflight.responses.add(action_key(d), d)
                elif k == "tool_started":
                    hb.inflight.tools_started.append(d)
                elif k == "tool_call":
                    hb.inflight.tools_done.append(d)
            elif k == "metrics_collecting":
                hb.merged_before = d.get("merged_before")
            elif k == "rollout_reviewed":
                hb.reviewed = True
            elif k == "heartbeat_completed":
                hb.completed = d
            elif k == "timing_changed":
                hb.timing = d
    if cp is not None:
        started = None  # only needed to restart a session that never completed a step
    elif started is None:
        started = next((r.data for r in journal.records("session_started")), None)
    return Tail(cp, pending, started, finished, n, journal.last_seq, responses)


def finished_keys(runs: Iterable[dict]) -> set[str]:
    return {r["action_id"] for r in runs}


def restore(tail: Tail, cfg: ScheduleConfig, now: datetime) -> tuple[Progress, datetime]:
    """The run's progress as of the journal's end — the last checkpoint's, plus the actions the
    unfinished heartbeat finished — and the simulated time the journal ended at. ``now``: the
    clock's time, for a session that never journaled its start."""
    cp = tail.checkpoint
    if cp is not None:
        progress = Progress.from_checkpoint(cp.data)
        t = sim_time(cp.data["time"])
    else:
        started = (tail.session_started or {}).get("time")
        t = sim_time(started) if started else now
        progress = Progress(schedule.start(t, cfg))
    p = tail.pending
    if p is not None:
        t = p.time
        if isinstance(p, PendingHeartbeat):
            progress.finished |= finished_keys(p.runs)
            progress.phase.runs.extend(action_summary(f) for f in p.runs)
    return progress, t


def recharge(ledger: CostLedger, responses: Iterable[dict], pricing: Mapping[str, Any] | None) -> None:
    """Responses journaled after the last checkpoint were paid for by the process that died: put
    them back in this process's ledger (budgets, costs.json), as their providers did."""
    for d in responses:
        provider = d.get("provider", "")
        ledger.record_call(
            agent=d.get("agent", ""),
            provider=provider,
            model=d.get("model", ""),
            usage=Usage(**(d.get("usage") or {})),
            pricing=pricing,
            cost_usd=0.0 if provider == "offline" else None,
            meeting_id=d.get("meeting_id"),
        )


def unfinished_step(p: PendingMeeting | PendingHeartbeat | None) -> str | None:
    """The step under way, for the log and ``session_resumed``."""
    if isinstance(p, PendingMeeting):
        return f"meeting {p.started['meeting_id']}" + (
            " (journaled, reports not yet)" if p.completed else f" ({len(p.responses)} responses journaled)"
        )
    if isinstance(p, PendingHeartbeat):
        return f"heartbeat #{p.started['heartbeat']}" + (
            " (journaled, reports not yet)"
            if p.completed
            else f" ({len(p.runs)} actions finished" + (f", {p.inflight.key} under way)" if p.inflight else ")")
        )
    return None


def resume_info(tail: Tail, t: datetime, from_mirror: str | None, repairs: list[dict] | None = None) -> dict[str, Any]:
    """What a resume found: journaled as ``session_resumed`` and kept in session.json, with what
    ``--repair`` cut off a damaged journal (``repairs``), also logged."""
    for r in repairs or ():
        log.warning(
            "🩹 Journal repaired: %s; %d records moved aside to %s", r["problem"], r["lost_records"], r["moved_to"]
        )
    return {
        "at_seq": tail.last_seq,
        "checkpoint_seq": tail.checkpoint.seq if tail.checkpoint else None,
        "tail_records": tail.records,
        "unfinished_step": unfinished_step(tail.pending),
        "sim_time": t.isoformat(),
        "from_mirror": from_mirror,
        "wall_time": datetime.now(UTC).isoformat(timespec="seconds"),
        **({"journal_repaired": repairs} if repairs else {}),
    }


class Steps(Protocol):
    """The run's two steps, started afresh or from what the journal holds of them."""

    def hold_meeting(self, pending: PendingMeeting | None = None) -> dict[str, Any]: ...

    def heartbeat(self, pending: PendingHeartbeat | None = None) -> dict[str, Any]: ...

    def complete_meeting(self, rec: dict[str, Any], now: datetime) -> None: ...

    def complete_heartbeat(self, rec: dict[str, Any], timing_logged: dict[str, Any] | None = None) -> None: ...


def finish(p: PendingMeeting | PendingHeartbeat, steps: Steps) -> None:
    """Finish the step the journal shows under way: a journaled step only has its reports,
    timing and checkpoint done again; any other is carried on from what it journaled."""
    if isinstance(p, PendingMeeting):
        if p.completed is not None:
            steps.complete_meeting(p.completed, p.time)
        else:
            steps.hold_meeting(pending=p)
    elif p.completed is not None:
        steps.complete_heartbeat(p.completed, timing_logged=p.timing)
    else:
        steps.heartbeat(pending=p)


def clean_temps(ws: Workspace, session_dir: Path) -> None:
    """Temp files of atomic writes and half-copied deployment artifacts (``*.partial``) that a
    kill or a failed write left (never renamed into place), in the run's folders."""
    for d in (ws.reports_dir, ws.metrics_file.parent, ws.deployment_dir, session_dir):
        if d.is_dir():
            for pattern in (".*.tmp", f"*{deployment.PARTIAL}"):
                for p in d.rglob(pattern):
                    p.unlink(missing_ok=True)
