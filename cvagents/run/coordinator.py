"""The autonomous coordinator: the clock, the schedule, and the loop that ties the planning
meeting, the executive heartbeat, the journal, the reports and the mirror together.

Timeline (simulated time): a meeting, then heartbeats every ``heartbeat_minutes`` (the first
at once), the next meeting ``planning_interval_minutes`` later. Adaptive timing brings the
meeting forward when the handoff is drained, and brings heartbeats closer (and may delay the
meeting, within bounds) when the backlog is long; each change is logged with its reason.

Durability: the journal is the source of truth. A step is journaled as it happens
(``meeting_started`` … ``meeting_completed``; ``heartbeat_started``, ``action_started``,
``tool_started``, ``tool_call``, ``action_finished`` … ``heartbeat_completed``); its reports are
written from the journaled dicts; then a ``checkpoint`` record holds the whole coordinator state
and the schedule. ``prepare()`` on a session with a journal resumes it: it restores the last
checkpoint and finishes the step after it without repeating what the journal shows was done
(see ``cvagents.run.recovery``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import signal
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cvagents.clock import Clock, ManualClock, stamp
from cvagents.config import Settings
from cvagents.durability import crashpoints
from cvagents.durability.atomic import atomic_write_json, read_json
from cvagents.durability.crashpoints import crashpoint
from cvagents.durability.journal import Journal
from cvagents.durability.session import apply_journal_retention, find_unfinished, mirror_sources
from cvagents.execution.executive import ActionRun, Executive
from cvagents.execution.tools import ToolContext, default_registry
from cvagents.llm.base import Usage
from cvagents.llm.cost import CostLedger
from cvagents.planning.handoff import HandoffError, read_handoff
from cvagents.planning.meeting import Meeting
from cvagents.planning.team import Teams, build_teams
from cvagents.rollout import controller as rollout
from cvagents.rollout import metrics_store
from cvagents.rollout.state import snapshot
from cvagents.run import recovery as resume
from cvagents.run import reports
from cvagents.run.rebuild import catch_up as catch_up_reports
from cvagents.workspace import Workspace

log = logging.getLogger("cvagents.run")


def setup_logging(ws: Workspace, console: bool = True) -> list[logging.Handler]:
    """executive.log in the guide's style, and the same lines on the console."""
    fmt = logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S")
    handlers: list[logging.Handler] = [logging.FileHandler(ws.log_file, encoding="utf-8")]
    if console:
        handlers.append(logging.StreamHandler(sys.stdout))
    root = logging.getLogger("cvagents")
    root.setLevel(logging.INFO)
    for h in handlers:
        h.setFormatter(fmt)
        root.addHandler(h)
    return handlers


@dataclass
class RunOptions:
    meetings: int | None = None
    time_scale: float = 1.0
    session_id: str | None = None  # continue (or start) this session
    console: bool = True
    new_session: bool = False  # never continue an unfinished session
    mirror_to: str | None = None  # overrides mirror.target in the config
    rebuild_reports: bool = False  # rebuild reports/ from the journal before continuing (after a restore)
    from_mirror: str | None = None  # where the workspace was restored from (for the record)


@dataclass
class Phase:
    """What the executive did since the last meeting: the feedback the next meeting reads."""

    runs: list[dict] = field(default_factory=list)

    def grouped(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {"succeeded": [], "failed": [], "refused": []}
        for r in self.runs:
            out.setdefault(r["status"], []).append(r)
        return out


@dataclass
class Schedule:
    """When the next meeting and heartbeat are due (simulated time); journaled in checkpoints."""

    t_meeting: datetime
    t_heartbeat: datetime | None = None
    hb_minutes: float = 5.0
    last_meeting: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        iso = lambda t: t.isoformat() if t else None  # noqa: E731
        return {
            "next_meeting": iso(self.t_meeting),
            "next_heartbeat": iso(self.t_heartbeat),
            "heartbeat_minutes": self.hb_minutes,
            "last_meeting": iso(self.last_meeting),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Schedule:
        t = lambda s: datetime.fromisoformat(s) if s else None  # noqa: E731
        return cls(
            t(d["next_meeting"]), t(d.get("next_heartbeat")), float(d["heartbeat_minutes"]), t(d.get("last_meeting"))
        )


# Keys action_finished records hold beyond ActionRun.summary().
_RUN_EXTRA = ("duration_s", "agent", "final_text", "outcomes", "heartbeat")


def _summary(fin: dict) -> dict:
    return {k: v for k, v in fin.items() if k not in _RUN_EXTRA}


def _iso_time(s: str) -> datetime:
    t = datetime.fromisoformat(s)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


class _JournaledTools:
    """The tool registry as the executive sees it: every call is journaled as started before it
    runs, a replayed action takes its results from the journal, and crash points surround it."""

    def __init__(self, inner, coordinator: Coordinator):
        self._inner = inner
        self._coord = coordinator

    def call(self, ctx: ToolContext, name: str, arguments: Any):
        return self._coord._call_tool(ctx, name, arguments)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class Coordinator:
    def __init__(
        self,
        settings: Settings,
        workspace: Path,
        options: RunOptions,
        teams: Teams | None = None,
        clock: Clock | None = None,
        ledger: CostLedger | None = None,
    ):
        self.settings = settings
        self.cfg = settings.coordination
        self.options = options
        self.ws = Workspace.from_config(workspace, self.cfg).create(settings.project_root)
        self.clock = clock or Clock(options.time_scale)
        self.ledger = ledger or CostLedger(settings.meeting.budgets)
        self.ledger.today = lambda: self.clock.now().date().isoformat()  # days follow the run's clock
        self.teams = teams or build_teams(settings)
        self._log_handlers = setup_logging(self.ws, console=options.console)

        # Which session: the one asked for, else the newest unfinished one, else a new one.
        sid = options.session_id
        if sid is None and not options.new_session:
            sid = find_unfinished(self.ws.sessions_dir)
        self.session_id = sid or f"{stamp(self.clock.now())}_{uuid.uuid4().hex[:6]}"
        self.session_dir = self.ws.sessions_dir / f"session_{self.session_id}"
        jdir = self.session_dir / "trajectories"
        self.resuming = jdir.is_dir() and any(p.suffix == ".jsonl" for p in jdir.iterdir())
        if self.resuming and options.new_session and options.session_id:
            raise ValueError(f"session {self.session_id} already exists; --new-session needs a new id")
        jc = self.cfg.journal
        self.journal = Journal.open(jdir, segment_max_bytes=jc.segment_max_bytes, fsync=jc.fsync)
        self._lock = threading.Lock()
        self.registry = _JournaledTools(default_registry(), self)
        mc = settings.meeting
        self.meeting = Meeting(
            self.teams,
            max_actions=mc.meeting.max_actions,
            rounds=mc.meeting.rounds,
            synthesis_retries=mc.meeting.synthesis_retries,
            fallback_moderator=None
            if mc.meeting.fallback_moderator == "offline"
            else self.teams.planning[mc.meeting.fallback_moderator].provider,
            max_tokens=mc.defaults.max_tokens,
            record=self.record,
            memo=self._meeting_memo,
        )
        self.executive = Executive(
            self.teams.executive,
            self.registry,
            self._tool_context,
            max_tool_steps=mc.defaults.max_tool_steps,
            max_tokens=mc.defaults.max_tokens,
            record=self.record,
            memo=self._action_memo,
        )
        self.finished: set[str] = set()
        self.phase = Phase()
        self.meetings_held = 0
        self.heartbeats = 0
        self.summaries: list[str] = []
        self.sched: Schedule | None = None
        self.on_step: Callable[[str, dict], None] | None = None
        self.resume_info: dict[str, Any] | None = None
        self._pending: resume.PendingMeeting | resume.PendingHeartbeat | None = None
        self._meeting_responses: resume.ResponseMemo | None = None
        self._replay: resume.ActionReplay | None = None
        self._tool_index = 0
        self._calls_in_action: list[tuple[str, Any]] = []
        self._prepared = False
        self._started_wall = datetime.now(UTC).isoformat(timespec="seconds")
        old = read_json(self.session_dir / "session.json") or {}
        self._resumes = int(old.get("resumes", 0)) + (1 if self.resuming else 0)
        self._started_wall = old.get("started_wall", self._started_wall)
        self.mirror = None
        target = options.mirror_to or self.cfg.mirror.target
        if target:
            from cvagents.durability.mirror import Mirror

            self.mirror = Mirror(
                mirror_sources(self.ws),
                target,
                interval_s=self.cfg.mirror.interval_seconds,
                manifest_extra=lambda: {"session_id": self.session_id, "journal_last_seq": self.journal.last_seq},
            )

    # ------------------------------------------------------------------ plumbing
    def record(self, kind: str, data: dict):
        """Journal one record; returns it as the journal holds it (its data through JSON once)."""
        with self._lock:
            if crashpoints.armed(f"torn:{kind}"):
                crashpoints.torn_append(self.journal, kind, data)
            crashpoint(f"before:{kind}")
            rec = self.journal.append(kind, data)
            crashpoint(f"after:{kind}")
            return rec

    def _tool_context(self, key: str) -> ToolContext:
        return ToolContext(
            self.ws,
            self.cfg,
            action_key=key,
            now=self.clock.now,
            log=logging.getLogger("cvagents.execution.tools"),
            record=self.record,
        )

    def _recent_summaries(self) -> list[str]:
        k = self.settings.meeting.meeting.summaries_in_context
        return self.summaries[-k:] if k > 0 else []

    def _kick_mirror(self) -> None:
        if self.mirror is not None:
            self.mirror.kick()

    def mirror_status(self) -> dict | None:
        if self.mirror is None:
            return None
        st = self.mirror.status()
        st.pop("last_tick", None)
        return st

    def _write_session(self, status: str) -> None:
        atomic_write_json(
            self.session_dir / "session.json",
            {
                "session_id": self.session_id,
                "status": status,
                "config_hash": self.settings.config_hash(),
                "time_scale": self.options.time_scale,
                "providers": sorted({f"{a.provider.name}:{a.provider.model}" for a in self.teams.all().values()}),
                "meetings_held": self.meetings_held,
                "heartbeats": self.heartbeats,
                "updated": self.clock.now().isoformat(),
                "updated_wall": datetime.now(UTC).isoformat(timespec="microseconds"),
                "started_wall": self._started_wall,
                "resumes": self._resumes,
                "last_resume": self.resume_info,
                "journal": {"last_seq": self.journal.last_seq, "segments": len(self.journal.segments())},
                "mirror": self.mirror_status(),
            },
        )

    def _owners(self) -> set[str]:
        return set(self.teams.executive)

    def _handoff(self):
        try:
            return read_handoff(self.ws.handoff_file, self._owners()), None
        except HandoffError as e:
            return None, str(e)

    def state(self) -> dict[str, Any]:
        h, _ = self._handoff()
        open_actions = []
        if h:
            open_actions = [
                {"id": a.id, "action": a.action, "owner": a.owner, "priority": a.priority}
                for a in h.actions
                if f"{h.meeting_id}#{a.id}" not in self.finished
            ]
        grouped = self.phase.grouped()
        return snapshot(
            self.ws,
            self.cfg,
            meeting_number=self.meetings_held + 1,
            last_execution=grouped,
            open_actions=open_actions,
            failed_actions=grouped["failed"],
        )

    # ------------------------------------------------------------------ memos: nothing paid twice
    def _account(self, agent: str, d: dict, meeting_id: str | None) -> None:
        """A response journaled after the last checkpoint was paid for by the process that died:
        put it back in this process's ledger (budgets, costs.json), as the provider did."""
        provider = d.get("provider", "")
        self.ledger.record_call(
            agent=agent,
            provider=provider,
            model=d.get("model", ""),
            usage=Usage(**(d.get("usage") or {})),
            pricing=self.settings.meeting.pricing,
            cost_usd=0.0 if provider == "offline" else None,
            meeting_id=meeting_id,
        )

    def _meeting_memo(self, agent: str, purpose: str, h: str) -> dict | None:
        memo = self._meeting_responses
        return memo.take((agent, purpose, h)) if memo is not None else None

    def _action_memo(self, key: str, agent: str, step: int, h: str):
        r = self._replay
        if r is None or r.key != key:
            return None
        d = r.responses.take((agent, step, h))
        return resume.result_from_dict(d) if d is not None else None

    def _call_tool(self, ctx: ToolContext, name: str, arguments: Any):
        key = ctx.action_key
        i = self._tool_index
        self._tool_index += 1
        args = arguments if isinstance(arguments, dict) else {"_raw": arguments}
        r = self._replay if self._replay is not None and self._replay.key == key else None
        if r is not None and i < len(r.tools_done):
            d = r.tools_done[i]
            if d.get("tool") == name and d.get("arguments") == args:
                return resume.outcome_from_record(d)
            log.warning(
                "replay of %s diverged at tool call %d (%s, journal says %s): running it", key, i, name, d.get("tool")
            )
            self._replay = r = None
        inflight = (
            r is not None
            and i < len(r.tools_started)
            and r.tools_started[i].get("tool") == name
            and r.tools_started[i].get("arguments") == args
        )
        if inflight:
            before = r.tools_started[i].get("world") or {}
            found = resume.repair_world(name, ctx, args, before)
            log.info("🔁 %s of %s was under way when the run stopped: %s", name, key, found)
            self.record("tool_recovered", {"action_id": key, "index": i, "tool": name, "found": found})
        else:
            before = resume.world_before(name, ctx, args)
            self.record(
                "tool_started", {"action_id": key, "index": i, "tool": name, "arguments": args, "world": before}
            )
        crashpoint(f"tool_before:{name}")
        outcome = self.registry._inner.call(ctx, name, arguments)
        first_call = (name, args) not in self._calls_in_action
        self._calls_in_action.append((name, args))
        if inflight or (first_call and isinstance(outcome.result, dict) and outcome.result.get("already_done")):
            # Done in the world before the journal knew (a crash, or a mirror whose journal copy
            # lags its files): answer as the call that did it answered.
            outcome = resume.recovered_outcome(name, outcome, before, ctx)
        # The result as the journal will hold it (JSON, keys sorted): a result replayed from the
        # journal after a crash then reads, to the model and in the reports, exactly the same.
        outcome = dataclasses.replace(
            outcome, result=json.loads(json.dumps(outcome.result, sort_keys=True, default=str))
        )
        crashpoint(f"tool_after:{name}")
        return outcome

    # ------------------------------------------------------------------ the two steps
    def hold_meeting(self, pending: resume.PendingMeeting | None = None) -> dict:
        if pending is None:
            now = self.clock.now()
            number = self.meetings_held + 1
            meeting_id = f"meeting_{stamp(now)}"
            log.info("📊 Planning meeting %d: 🎯 Initiating Planning Team Meeting... (%s)", number, meeting_id)
            state, earlier = self.state(), self._recent_summaries()
            self.record(
                "meeting_started",
                {
                    "meeting_id": meeting_id,
                    "number": number,
                    "time": now.isoformat(),
                    "state": state,
                    "earlier": earlier,
                },
            )
            self._meeting_responses = None
        else:
            d = pending.started
            now, number, meeting_id = _iso_time(d["time"]), d["number"], d["meeting_id"]
            state, earlier = d["state"], d["earlier"]
            log.info(
                "🔁 Planning meeting %d (%s) resumes: %d agent responses already journaled are reused",
                number,
                meeting_id,
                len(pending.responses),
            )
            self._meeting_responses = pending.responses
        try:
            outcome = self.meeting.hold(meeting_id, number, now.strftime("%Y-%m-%dT%H:%M:%S"), state, earlier)
        finally:
            self._meeting_responses = None
        outcome.notes.extend(f"Budget downgrade: {d}" for d in self.ledger.downgrade_summary(meeting_id=meeting_id))
        cost = {}
        for c in self.ledger.calls(meeting_id=meeting_id):
            cost[c.agent] = round(cost.get(c.agent, 0.0) + c.cost_usd, 6)
        rec = reports.meeting_record(outcome, now.strftime("%Y-%m-%dT%H:%M:%S"), cost)
        rec = self.record("meeting_completed", rec).data  # reports are rendered from the journaled dict
        if outcome.status == "completed":
            log.info(
                "✅ Meeting complete! (%.1f s) 📊 Agents participated: %d 📋 Actions identified: %d",
                outcome.duration_s,
                len(outcome.participants),
                outcome.handoff.count,
            )
        else:
            log.info("❌ Meeting failed (%s): the previous handoff stays in place", "; ".join(outcome.notes))
        self._complete_meeting(rec, now)
        return rec

    def _complete_meeting(self, rec: dict, now: datetime) -> None:
        """Reports, state and schedule after a journaled meeting; the checkpoint last."""
        reports.write_meeting(self.ws, rec)
        crashpoint("meeting:after_reports")
        self.meetings_held = rec["number"]
        self.phase = Phase()
        mid = rec["meeting_id"]
        if rec["status"] == "completed":
            decisions = "; ".join(d["decision"] for d in (rec["synthesis"] or {}).get("decisions", []))
            self.summaries.append(f"{mid}: {decisions} ({rec['handoff']['count']} actions)")
            self.finished = {k for k in self.finished if k.startswith(f"{mid}#")}  # a new handoff
        else:
            self.summaries.append(f"{mid}: failed, no new plan")
        k = self.settings.meeting.meeting.summaries_in_context
        del self.summaries[: max(0, len(self.summaries) - max(k, 1))]
        hb = self.cfg.schedule.heartbeat_minutes
        self.sched = Schedule(now + timedelta(minutes=self.cfg.schedule.planning_interval_minutes), now, hb, now)
        self._checkpoint("meeting", rec)

    def heartbeat(self, pending: resume.PendingHeartbeat | None = None) -> dict:
        runs: list[dict] = []
        if pending is None:
            now = self.clock.now()
            self.heartbeats += 1
            hb_id = stamp(now)
            log.info("💓 HEARTBEAT CYCLE #%d: %s", self.heartbeats, now.strftime("%Y-%m-%d %H:%M:%S"))
            self.record(
                "heartbeat_started", {"heartbeat": self.heartbeats, "heartbeat_id": hb_id, "time": now.isoformat()}
            )
        else:
            d = pending.started
            now, hb_id = _iso_time(d["time"]), d["heartbeat_id"]
            self.heartbeats = d["heartbeat"]
            runs = list(pending.runs)
            log.info(
                "🔁 HEARTBEAT CYCLE #%d (%s) resumes: %d actions already finished%s",
                self.heartbeats,
                hb_id,
                len(runs),
                f", {pending.inflight.key} was under way" if pending.inflight else "",
            )
        h, error = self._handoff()
        if error:
            log.info("❌ Handoff rejected: %s", error)
        if h:
            room = self.cfg.schedule.actions_per_heartbeat - len(runs)
            todo = self.executive.next_actions(h.actions, h.meeting_id, self.finished, room) if room > 0 else []
            inflight = pending.inflight if pending is not None else None
            for i, a in enumerate(todo):
                if self.clock.stop_event.is_set() and (runs or i):
                    break
                key = f"{h.meeting_id}#{a.id}"
                replay = inflight if inflight is not None and inflight.key == key else None
                if replay is not None:
                    state = replay.state
                    log.info(
                        "🔁 Action %s resumes: %d responses, %d tool results journaled",
                        key,
                        len(replay.responses),
                        len(replay.tools_done),
                    )
                else:
                    state = self.state()
                    self.record(
                        "action_started",
                        {
                            "action_id": key,
                            "owner": a.owner,
                            "action": a.action,
                            "priority": a.priority,
                            "heartbeat": self.heartbeats,
                            "state": state,
                        },
                    )
                self._replay, self._tool_index, self._calls_in_action = replay, 0, []
                try:
                    run = self.executive.carry_out(a, h.meeting_id, state)
                finally:
                    self._replay = None
                fin = self._finished_record(run)
                self.finished.add(key)
                self.record("action_finished", fin)
                self.phase.runs.append(_summary(fin))
                runs.append(fin)
                self._kick_mirror()
        if pending is not None and pending.merged_before is not None:
            before = pending.merged_before
        else:
            before = len(metrics_store.load(self.ws.metrics_file).get("merged", []))
            self.record("metrics_collecting", {"heartbeat": self.heartbeats, "merged_before": before})
        metrics_store.collect(self.ws.metrics_file, self.ws.evaluations_dir, now.isoformat())
        if pending is None or not pending.reviewed:
            rollout.after_heartbeat(
                self.ws,
                self.cfg,
                self.clock.now().isoformat(),
                record=self.record,
                settings_hash=self.settings.config_hash(),
            )  # the gates decide: rollback, pause, record
            self.record("rollout_reviewed", {"heartbeat": self.heartbeats})
        new_ids = list(metrics_store.load(self.ws.metrics_file).get("merged", []))[before:]
        remaining = 0
        if h:
            remaining = sum(1 for a in h.actions if f"{h.meeting_id}#{a.id}" not in self.finished)
        rec = {
            "heartbeat_id": hb_id,
            "heartbeat": self.heartbeats,
            "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S"),
            "meeting_id": h.meeting_id if h else None,
            "handoff_error": error,
            "executions": [
                {"agent": f["agent"], "action_id": f["action_id"], "action": f["action"], **o}
                for f in runs
                for o in f["outcomes"]
            ]
            + [
                {
                    "agent": f["agent"],
                    "action_id": f["action_id"],
                    "action": f["action"],
                    "tool": None,
                    "arguments": {},
                    "status": f["status"],
                    "result": {"text": f["final_text"], "error": f["error"]},
                    "duration_s": f["duration_s"],
                }
                for f in runs
                if not f["outcomes"]
            ],
            "actions": [{**_summary(f), "duration_s": f["duration_s"], "final_text": f["final_text"]} for f in runs],
            "remaining": remaining,
            "new_metrics": new_ids,
        }
        rec = self.record("heartbeat_completed", rec).data  # reports are rendered from the journaled dict
        self._complete_heartbeat(rec)
        return rec

    def _finished_record(self, run: ActionRun) -> dict:
        return {
            **run.summary(),
            "duration_s": round(run.duration_s, 4),
            "agent": run.agent,
            "final_text": run.final_text,
            "outcomes": [o.as_dict() for o in run.outcomes],
            "heartbeat": self.heartbeats,
        }

    def _complete_heartbeat(self, rec: dict, timing_logged: dict | None = None) -> None:
        """Reports, adaptive timing and the checkpoint after a journaled heartbeat."""
        reports.write_execution(self.ws, rec)
        reports.append_deployments_log(self.ws, rec)
        crashpoint("heartbeat:after_reports")
        self.heartbeats = rec["heartbeat"]
        change = self._adapt(rec["remaining"], self.clock.now())
        if change is not None and timing_logged is None:
            log.info(
                "⏱ Timing: heartbeat every %.1f min, next meeting at %s (was %s): %s",
                change["heartbeat_minutes"],
                _iso_time(change["next_meeting"]).strftime("%H:%M:%S"),
                _iso_time(change["was"]).strftime("%H:%M:%S"),
                change["reason"],
            )
            self.record("timing_changed", change)
        self._checkpoint("heartbeat", rec)

    # ------------------------------------------------------------------ the checkpoint
    def _checkpoint(self, step: str, rec: dict) -> None:
        now = self.clock.now()
        rollout_state = {"updated": now.isoformat(), "session_id": self.session_id, **self.state()}
        cp = self.record(
            "checkpoint",
            {
                "step": step,
                "time": now.isoformat(),
                "meetings_held": self.meetings_held,
                "heartbeats": self.heartbeats,
                "summaries": list(self.summaries),
                "finished": sorted(self.finished),
                "phase": self.phase.runs,
                "schedule": self.sched.as_dict(),
                "ledger": self.ledger.snapshot(),
                "rollout_state": rollout_state,
                "controller": read_json(rollout.controller_file(self.ws)),
            },
        )
        self._write_derived(cp.data["rollout_state"])  # rendered from the journaled record
        self._retain()
        self._kick_mirror()
        if self.on_step is not None:
            self.on_step(step, rec)

    def _write_derived(self, rollout_state: dict) -> None:
        """``reports/rollout_state.json``: the snapshot the agents see, for monitors to read;
        ``reports/costs.json``: spending per agent, meeting and day, and every downgrade."""
        reports.write_costs(self.ws, self.ledger)
        atomic_write_json(self.ws.reports_dir / "rollout_state.json", rollout_state)
        self._write_session("running")

    def _retain(self) -> None:
        jc = self.cfg.journal
        if len(self.journal.segments()) > jc.keep_segments + 1:
            done = apply_journal_retention(self.session_dir, jc.keep_segments, jc.keep_archived_segments)
            if done["archived"] or done["pruned"]:
                log.debug("journal retention: %s", done)

    # ------------------------------------------------------------------ resume
    def prepare(self) -> dict[str, Any]:
        """Start the session, or restore it from its journal: the state of the last checkpoint,
        the clock where the journal ended, and the unfinished step (run first by ``run``)."""
        if self._prepared:
            return self.resume_info or {}
        self._prepared = True
        hb = self.cfg.schedule.heartbeat_minutes
        if not self.resuming:
            now = self.clock.now()
            self.sched = Schedule(now, None, hb, None)
            self._write_session("running")
            self.record(
                "session_started",
                {
                    "session_id": self.session_id,
                    "time_scale": self.options.time_scale,
                    "meetings": self.options.meetings,
                    "time": now.isoformat(),
                },
            )
            return {}
        tail = resume.scan(self.journal)
        cp = tail.checkpoint
        catch_up_reports(self.ws, self.journal, cp.seq if cp else 0)  # decisions a kill kept out of reports/
        t: datetime | None = None
        if cp is not None:
            d = cp.data
            self.meetings_held, self.heartbeats = d["meetings_held"], d["heartbeats"]
            self.summaries = list(d["summaries"])
            self.finished = set(d["finished"])
            self.phase = Phase(list(d["phase"]))
            self.sched = Schedule.from_dict(d["schedule"])
            self.ledger.restore(d["ledger"])
            t = _iso_time(d["time"])
        else:
            start = (tail.session_started or {}).get("time")
            t = _iso_time(start) if start else self.clock.now()
            self.sched = Schedule(t, None, hb, None)
        p = tail.pending
        if p is not None:
            t = _iso_time(p.started["time"])
            if isinstance(p, resume.PendingHeartbeat):
                done = resume.finished_keys(p.runs)
                self.finished |= done
                self.phase.runs.extend(_summary(f) for f in p.runs)
        if t is not None and (isinstance(self.clock, ManualClock) or self.clock.time_scale != 1.0):
            self.clock.jump_to(t)  # simulated time goes on from where the journal ended
        for d in tail.responses:
            self._account(d.get("agent", ""), d, d.get("meeting_id"))
        self._pending = p
        what = None
        if isinstance(p, resume.PendingMeeting):
            what = f"meeting {p.started['meeting_id']}" + (
                " (journaled, reports not yet)" if p.completed else f" ({len(p.responses)} responses journaled)"
            )
        elif isinstance(p, resume.PendingHeartbeat):
            what = f"heartbeat #{p.started['heartbeat']}" + (
                " (journaled, reports not yet)"
                if p.completed
                else f" ({len(p.runs)} actions finished" + (f", {p.inflight.key} under way)" if p.inflight else ")")
            )
        self.resume_info = {
            "at_seq": tail.last_seq,
            "checkpoint_seq": cp.seq if cp else None,
            "tail_records": tail.records,
            "unfinished_step": what,
            "sim_time": t.isoformat() if t else None,
            "from_mirror": self.options.from_mirror,
            "wall_time": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if self.options.rebuild_reports:
            from cvagents.run.rebuild import rebuild_reports

            rebuild_reports(self.ws.root, self.session_id, settings=self.settings, journal=self.journal)
        if cp is not None:
            self._write_derived(cp.data["rollout_state"])
        else:
            self._write_session("running")
        self._clean_temps()
        log.info(
            "🔁 Resuming session %s at journal record %d: %d meetings, %d heartbeats done; %s",
            self.session_id,
            tail.last_seq,
            self.meetings_held,
            self.heartbeats,
            what or "no step was under way",
        )
        self.record("session_resumed", self.resume_info)
        return self.resume_info

    def _clean_temps(self) -> None:
        """Temp files of atomic writes a kill interrupted (never renamed into place)."""
        for d in (self.ws.reports_dir, self.ws.metrics_file.parent, self.ws.deployment_dir, self.session_dir):
            if d.is_dir():
                for p in d.rglob(".*.tmp"):
                    p.unlink(missing_ok=True)

    def _finish_pending(self) -> bool:
        """Finish the step the journal shows under way; False if the run was stopped in it."""
        p, self._pending = self._pending, None
        if isinstance(p, resume.PendingMeeting):
            if p.completed is not None:
                self._complete_meeting(p.completed, _iso_time(p.started["time"]))
            else:
                self.hold_meeting(pending=p)
        elif isinstance(p, resume.PendingHeartbeat):
            if p.completed is not None:
                self._complete_heartbeat(p.completed, timing_logged=p.timing)
            else:
                self.heartbeat(pending=p)
            if self.clock.stop_event.is_set():
                return False
        return True

    # ------------------------------------------------------------------ the schedule
    def _adapt(self, remaining: int, now: datetime) -> dict | None:
        """Adaptive timing after a heartbeat: update the schedule; the change, if any."""
        sched, s = self.cfg.schedule, self.sched
        adapt = sched.adaptive_timing
        hb_normal = timedelta(minutes=sched.heartbeat_minutes)
        hb = timedelta(minutes=s.hb_minutes)
        t_meeting = s.t_meeting
        new_hb, new_meeting, why = hb_normal, t_meeting, None
        if adapt.enabled and s.last_meeting is not None:
            if remaining == 0:
                earliest = max(s.last_meeting + timedelta(minutes=adapt.min_planning_interval_minutes), now)
                if earliest < t_meeting:
                    new_meeting, why = earliest, "handoff drained"
            else:
                left = max(0, math.ceil((t_meeting - now) / hb_normal) - 1)  # heartbeats before the meeting
                capacity = left * sched.actions_per_heartbeat
                if remaining > adapt.backlog_factor * capacity:
                    new_hb = max(timedelta(minutes=adapt.min_heartbeat_minutes), hb_normal / 2)
                    needed = math.ceil(remaining / sched.actions_per_heartbeat) * new_hb
                    latest = s.last_meeting + timedelta(minutes=adapt.max_planning_interval_minutes)
                    if now + needed > t_meeting:
                        new_meeting = min(latest, max(t_meeting, now + needed))
                    why = f"{remaining} actions pending, {capacity} fit before the meeting"
        change = None
        if new_hb != hb or new_meeting != t_meeting:
            change = {
                "heartbeat_minutes": new_hb.total_seconds() / 60,
                "next_meeting": new_meeting.isoformat(),
                "was": t_meeting.isoformat(),
                "reason": why or "backlog cleared",
            }
        s.hb_minutes, s.t_meeting = new_hb.total_seconds() / 60, new_meeting
        s.t_heartbeat = now + new_hb
        if remaining == 0 and s.t_heartbeat > s.t_meeting:
            s.t_heartbeat = s.t_meeting
        return change

    def run(self) -> dict:
        self.prepare()
        if self.mirror is not None:
            self.mirror.start()
        stopped = not self._finish_pending()
        s = self.sched
        while not stopped:
            s = self.sched
            meeting_next = s.t_heartbeat is None or s.t_meeting <= s.t_heartbeat
            due = s.t_meeting if meeting_next else s.t_heartbeat
            if meeting_next and self.options.meetings is not None and self.meetings_held >= self.options.meetings:
                break  # the last meeting's execution phase is over
            if not self.clock.sleep_until(due):
                stopped = True
                break
            if meeting_next:
                self.hold_meeting()
                continue
            self.heartbeat()
            if self.clock.stop_event.is_set():
                stopped = True
                break
        status = "stopped" if stopped else "finished"
        self.record(
            "session_finished", {"status": status, "meetings_held": self.meetings_held, "heartbeats": self.heartbeats}
        )
        self._write_session(status)
        self._kick_mirror()
        return {
            "status": status,
            "meetings": self.meetings_held,
            "heartbeats": self.heartbeats,
            "session_id": self.session_id,
        }

    def close(self) -> None:
        if self.mirror is not None:
            res = self.mirror.stop(timeout=60.0)
            if not res.ok:
                log.warning("final mirror flush to %s failed: %s", self.mirror.target, "; ".join(res.errors))
            try:
                st = read_json(self.session_dir / "session.json")
                if st:
                    st["mirror"] = self.mirror_status()
                    atomic_write_json(self.session_dir / "session.json", st)
            except OSError:
                pass
        self.journal.close()
        root = logging.getLogger("cvagents")
        for h in self._log_handlers:
            root.removeHandler(h)
            h.close()


def install_sigint(clock: Clock) -> None:
    """First Ctrl-C: stop cleanly after the current step. Second: stop now."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        if clock.stop_event.is_set():
            raise KeyboardInterrupt
        print("\n⏹ Stopping after the current step (Ctrl-C again to stop at once)...", flush=True)
        clock.stop()

    signal.signal(signal.SIGINT, handler)
