"""Resume: what a session's journal says was done, half done and not done.

The coordinator writes a ``checkpoint`` record after each completed step (a meeting or a
heartbeat, its reports written): the whole coordinator state and the schedule. Resuming reads
the last checkpoint and the records after it (the *tail*), which describe at most one step:

* ``meeting_started`` without ``meeting_completed``: the meeting is held again with the state
  and summaries it was started with, and every agent response already journaled is reused
  (``ResponseMemo``), so no prompt is paid for twice;
* ``heartbeat_started`` without ``heartbeat_completed``: the actions it finished stay finished,
  the one it had started is replayed (``ActionReplay``): journaled responses and tool results
  are reused, and a tool that was started but whose result was not journaled is checked against
  the world (``repair_world``) before the tool, idempotent on the action id, is run again;
* a step whose record is journaled but whose checkpoint is not: only its reports, timing and
  checkpoint are done again.

Reading is proportional to the tail, not to the journal: ``Journal.last("checkpoint")`` reads
the newest segment first.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from cvagents.durability.atomic import atomic_write_json
from cvagents.durability.hashing import sha256_file
from cvagents.durability.journal import Journal, Record
from cvagents.execution.tools.registry import ToolOutcome
from cvagents.llm.base import LLMResult, ToolCall, Usage
from cvagents.rollout import deployment, metrics_store

__all__ = [
    "ResponseMemo",
    "ActionReplay",
    "PendingMeeting",
    "PendingHeartbeat",
    "Tail",
    "scan",
    "result_from_dict",
    "ReplayedOutcome",
    "world_before",
    "repair_world",
    "recovered_outcome",
]


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


@dataclass
class PendingHeartbeat:
    started: dict  # heartbeat_started data: heartbeat, heartbeat_id, time
    runs: list[dict] = field(default_factory=list)  # action_finished data, in order
    inflight: ActionReplay | None = None
    merged_before: int | None = None  # from metrics_collecting
    reviewed: bool = False  # the rollout controller's review after the actions was done
    completed: dict | None = None  # heartbeat_completed data
    timing: dict | None = None  # timing_changed journaled after it


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


# --------------------------------------------------------------------------- replaying an action


def result_from_dict(d: dict) -> LLMResult:
    """An ``LLMResult`` back from its journaled ``as_dict()``."""
    return LLMResult(
        text=d.get("text", ""),
        tool_calls=tuple(ToolCall(c["id"], c["name"], c.get("arguments") or {}) for c in d.get("tool_calls") or ()),
        usage=Usage(**(d.get("usage") or {})),
        model=d.get("model", ""),
        provider=d.get("provider", ""),
        latency_s=d.get("latency_s", 0.0),
        stop_reason=d.get("stop_reason", ""),
    )


@dataclass(frozen=True)
class ReplayedOutcome(ToolOutcome):
    """A tool result taken from the journal: the tool is not run, nor journaled, again."""

    replayed: ClassVar[bool] = True


def outcome_from_record(d: dict) -> ReplayedOutcome:
    return ReplayedOutcome(
        d["tool"], d.get("arguments") or {}, d["status"], d.get("result") or {}, d.get("duration_s", 0.0)
    )


def _stage_dir(ctx, args: dict):
    stage = args.get("stage")
    stages = ctx.config.rollout.stages
    if not isinstance(stage, str) or stage not in stages:
        return None
    return ctx.workspace.stage_dir(stage)


def world_before(tool: str, ctx, args: dict) -> dict:
    """What a tool changes that its result or its undo depends on: journaled with
    ``tool_started``, so that after a crash the step can be finished or undone exactly and the
    re-run answers as the first run would have."""
    args = args if isinstance(args, dict) else {}
    if tool == "collect_metrics":
        return {"merged": len(metrics_store.load(ctx.workspace.metrics_file).get("merged", []))}
    if tool in ("deploy_model", "rollback_model"):
        d = _stage_dir(ctx, args)
        if d is not None:
            return {"pointer": deployment.read_pointer(d)}
    return {}


def _decision(ctx, action_key: str, outcome: str) -> dict | None:
    """The rollout decision this action recorded (``outcome``: deployed, rolled_back), if any."""
    try:
        from cvagents.rollout import decisions
    except ImportError:  # pragma: no cover - a build without the decisions log
        return {}
    return next(
        (
            d
            for d in reversed(decisions.read(ctx.workspace))
            if d.get("action_id") == action_key and d.get("outcome") == outcome
        ),
        None,
    )


def _put_pointer(stage_dir, pointer: dict | None) -> None:
    if pointer is None:
        (stage_dir / deployment.POINTER).unlink(missing_ok=True)
    else:
        atomic_write_json(stage_dir / deployment.POINTER, pointer)


def repair_world(tool: str, ctx, args: dict, before: dict) -> str:
    """Check a tool that was started but whose result was never journaled against the world.

    A side effect that completed (for a deployment: the version installed, its sha256 verified,
    the pointer on it and the decision recorded) is kept, and the tool, idempotent on the action
    id, answers "done"; one that stopped half way is undone (the version removed, the pointer put
    back as it was before the tool started), so the tool does it again, whole. Returns what was
    found."""
    args = args if isinstance(args, dict) else {}
    if tool == "deploy_model":
        d = _stage_dir(ctx, args)
        if d is None:
            return "unknown stage: nothing to check"
        done = deployment.by_action(d, ctx.action_key)
        if not done:
            return "no version installed by this action: deploying"
        art = d / "versions" / done["version"] / done["artifact"]
        healthy = art.is_file() and sha256_file(art) == done["sha256"]
        pointer = deployment.read_pointer(d) or {}
        if (
            healthy
            and pointer.get("version") == done["version"]
            and _decision(ctx, ctx.action_key, "deployed") is not None
        ):
            return f"{done['version']} installed, verified (sha256 {done['sha256'][:12]}), live and recorded: done"
        shutil.rmtree(d / "versions" / done["version"], ignore_errors=True)
        if "pointer" in before and pointer.get("version") == done["version"]:
            _put_pointer(d, before["pointer"])
        return (
            f"{done['version']} was installed but the deployment did not finish "
            f"({'pointer not switched' if pointer.get('version') != done['version'] else 'decision not recorded'}"
            f"{'' if healthy else ', artifact hash mismatch'}): undone, deploying again"
        )
    if tool == "rollback_model":
        d = _stage_dir(ctx, args)
        if d is None:
            return "unknown stage: nothing to check"
        pointer = deployment.read_pointer(d) or {}
        mine = pointer.get("pointer_action_id", pointer.get("action_id")) == ctx.action_key
        if not mine:
            return "the pointer was not swapped: rolling back"
        if _decision(ctx, ctx.action_key, "rolled_back") is not None:
            return f"rolled back to {pointer.get('version')} and recorded: done"
        if "pointer" in before:
            _put_pointer(d, before["pointer"])
            return "the pointer was swapped but the rollback not recorded: pointer restored, rolling back again"
        return "the pointer was swapped; no earlier pointer journaled: done"
    if tool == "run_rollback_drill":
        d = _stage_dir(ctx, args)
        if d is not None and deployment.recover(d):
            return "a drill cut short had left the pointer swapped: restored; drilling again"
        return "pointer consistent; re-running (idempotent on the action id)"
    return "re-running (idempotent on the action id)"


def recovered_outcome(tool: str, outcome: ToolOutcome, before: dict, ctx) -> ToolOutcome:
    """The re-run's outcome, as the interrupted run would have reported it."""
    result = {k: v for k, v in outcome.result.items() if k != "already_done"}
    if outcome.status == "succeeded":
        if tool == "collect_metrics" and "merged" in before and "new_records" in result:
            merged = metrics_store.load(ctx.workspace.metrics_file).get("merged", [])
            result["new_records"] = list(merged[before["merged"] :])
        elif tool == "deploy_model" and "version" in result and "deployed_to" not in result:
            d = _stage_dir(ctx, result)
            if d is not None:
                result["deployed_to"] = ctx.workspace.rel(d / "versions" / result["version"])
            dec = _decision(ctx, ctx.action_key, "deployed")
            if dec:
                result["decision_id"], result["decision"] = dec.get("id"), dec.get("reason")
        elif tool == "rollback_model" and "manifest" not in result:
            d = _stage_dir(ctx, result)
            pointer = deployment.read_pointer(d) if d is not None else None
            if pointer and str(pointer.get("reason") or "").startswith("rollback of "):
                result = {
                    "stage": result.get("stage"),
                    "rolled_back": pointer["reason"][len("rollback of ") :],
                    "live_version": pointer.get("version"),
                    "manifest": pointer,
                }
    return dataclasses.replace(outcome, result=result)


def finished_keys(runs: Iterable[dict]) -> set[str]:
    return {r["action_id"] for r in runs}
