"""The autonomous coordinator: the clock, the schedule, and the loop that ties the planning
meeting, the executive heartbeat, the journal and the reports together.

Timeline (simulated time): a meeting, then heartbeats every ``heartbeat_minutes`` (the first
at once), the next meeting ``planning_interval_minutes`` later. Adaptive timing brings the
meeting forward when the handoff is drained, and brings heartbeats closer (and may delay the
meeting, within bounds) when the backlog is long; each change is logged with its reason.
"""
from __future__ import annotations

import logging
import math
import signal
import sys
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

from . import metrics_store, reports
from .atomic import atomic_write_json, read_json
from .clock import Clock, stamp
from .config import Settings
from .executive import ActionRun, Executive
from .handoff import HandoffError, read_handoff
from .journal import Journal
from .llm.cost import CostLedger
from .meeting import Meeting
from .state import snapshot
from .team import Teams, build_teams
from .tools import ToolContext, default_registry
from .workspace import Workspace

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
    session_id: str | None = None
    console: bool = True


@dataclass
class Phase:
    """What the executive did since the last meeting: the feedback the next meeting reads."""

    runs: list[dict] = field(default_factory=list)

    def grouped(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {"succeeded": [], "failed": [], "refused": []}
        for r in self.runs:
            out.setdefault(r["status"], []).append(r)
        return out


class Coordinator:
    def __init__(self, settings: Settings, workspace: Path, options: RunOptions, teams: Teams | None = None, clock: Clock | None = None, ledger: CostLedger | None = None):
        self.settings = settings
        self.cfg = settings.coordination
        self.options = options
        self.ws = Workspace.from_config(workspace, self.cfg).create(settings.project_root)
        self.clock = clock or Clock(options.time_scale)
        self.ledger = ledger or CostLedger(settings.meeting.budgets)
        self.ledger.today = lambda: self.clock.now().date().isoformat()  # days follow the run's clock
        self.teams = teams or build_teams(settings)
        self._log_handlers = setup_logging(self.ws, console=options.console)
        self.session_id = options.session_id or f"{stamp(self.clock.now())}_{uuid.uuid4().hex[:6]}"
        self.session_dir = self.ws.sessions_dir / f"session_{self.session_id}"
        self.journal = Journal.open(self.session_dir / "trajectories")
        self._lock = threading.Lock()
        self.registry = default_registry()
        mc = settings.meeting
        self.meeting = Meeting(
            self.teams,
            max_actions=mc.meeting.max_actions,
            rounds=mc.meeting.rounds,
            synthesis_retries=mc.meeting.synthesis_retries,
            fallback_moderator=None if mc.meeting.fallback_moderator == "offline" else self.teams.planning[mc.meeting.fallback_moderator].provider,
            max_tokens=mc.defaults.max_tokens,
            record=self.record,
        )
        self.executive = Executive(
            self.teams.executive,
            self.registry,
            self._tool_context,
            max_tool_steps=mc.defaults.max_tool_steps,
            max_tokens=mc.defaults.max_tokens,
            record=self.record,
        )
        self.finished: set[str] = set()
        self.phase = Phase()
        self.meetings_held = 0
        self.heartbeats = 0
        self.summaries: list[str] = []
        self.on_step: Callable[[str, dict], None] | None = None

    # ------------------------------------------------------------------ plumbing
    def record(self, kind: str, data: dict) -> None:
        with self._lock:
            self.journal.append(kind, data)

    def _tool_context(self, key: str) -> ToolContext:
        return ToolContext(self.ws, self.cfg, action_key=key, now=self.clock.now, log=logging.getLogger("cvagents.tools"))

    def _write_state(self) -> None:
        """``reports/rollout_state.json``: the snapshot the agents see, for monitors to read;
        ``reports/costs.json``: spending per agent, meeting and day, and every downgrade."""
        reports.write_costs(self.ws, self.ledger)
        atomic_write_json(self.ws.reports_dir / "rollout_state.json", {"updated": self.clock.now().isoformat(), "session_id": self.session_id, **self.state()})

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
            },
        )

    def _owners(self) -> set[str]:
        return set(self.teams.executive)

    def state(self) -> dict[str, Any]:
        h = None
        try:
            h = read_handoff(self.ws.handoff_file, self._owners())
        except HandoffError:
            pass
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

    # ------------------------------------------------------------------ the two steps
    def hold_meeting(self) -> dict:
        now = self.clock.now()
        number = self.meetings_held + 1
        meeting_id = f"meeting_{stamp(now)}"
        log.info("📊 Planning meeting %d: 🎯 Initiating Planning Team Meeting... (%s)", number, meeting_id)
        state = self.state()
        self.record("meeting_started", {"meeting_id": meeting_id, "number": number, "time": now.isoformat()})
        outcome = self.meeting.hold(meeting_id, number, now.strftime("%Y-%m-%dT%H:%M:%S"), state, self.summaries[-self.settings.meeting.meeting.summaries_in_context:])
        outcome.notes.extend(f"Budget downgrade: {d}" for d in self.ledger.downgrade_summary(meeting_id=meeting_id))
        cost = {}
        for c in self.ledger.calls(meeting_id=meeting_id):
            cost[c.agent] = round(cost.get(c.agent, 0.0) + c.cost_usd, 6)
        rec = reports.meeting_record(outcome, now.strftime("%Y-%m-%dT%H:%M:%S"), cost)
        reports.write_meeting(self.ws, rec)
        self.record("meeting_completed", rec)
        self.meetings_held = number
        self._write_state()
        self.phase = Phase()
        if outcome.status == "completed":
            n = outcome.handoff.count
            log.info("✅ Meeting complete! (%.1f s) 📊 Agents participated: %d 📋 Actions identified: %d", outcome.duration_s, len(outcome.participants), n)
            decisions = "; ".join(d.decision for d in outcome.synthesis.decisions)
            self.summaries.append(f"{meeting_id}: {decisions} ({n} actions)")
        else:
            log.info("❌ Meeting failed (%s): the previous handoff stays in place", "; ".join(outcome.notes))
            self.summaries.append(f"{meeting_id}: failed, no new plan")
        self._write_session("running")
        return rec

    def heartbeat(self) -> dict:
        now = self.clock.now()
        self.heartbeats += 1
        hb_id = stamp(now)
        log.info("💓 HEARTBEAT CYCLE #%d: %s", self.heartbeats, now.strftime("%Y-%m-%d %H:%M:%S"))
        runs: list[ActionRun] = []
        error = None
        try:
            h = read_handoff(self.ws.handoff_file, self._owners())
        except HandoffError as e:
            h, error = None, str(e)
            log.info("❌ Handoff rejected: %s", e)
        if h:
            todo = self.executive.next_actions(h.actions, h.meeting_id, self.finished, self.cfg.schedule.actions_per_heartbeat)
            for a in todo:
                if self.clock.stop_event.is_set() and runs:
                    break
                key = f"{h.meeting_id}#{a.id}"
                self.record("action_started", {"action_id": key, "owner": a.owner, "action": a.action, "priority": a.priority})
                run = self.executive.carry_out(a, h.meeting_id, self.state())
                self.finished.add(key)
                self.record("action_finished", {**run.summary(), "duration_s": round(run.duration_s, 4)})
                self.phase.runs.append({**run.summary()})
                runs.append(run)
        collected = metrics_store.collect(self.ws.metrics_file, self.ws.evaluations_dir, now.isoformat())
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
                {"agent": r.agent, "action_id": r.key, "action": r.action.action, **o.as_dict()} for r in runs for o in r.outcomes
            ]
            + [
                {"agent": r.agent, "action_id": r.key, "action": r.action.action, "tool": None, "arguments": {}, "status": r.status, "result": {"text": r.final_text, "error": r.error}, "duration_s": round(r.duration_s, 4)}
                for r in runs
                if not r.outcomes
            ],
            "actions": [{**r.summary(), "duration_s": round(r.duration_s, 4), "final_text": r.final_text} for r in runs],
            "remaining": remaining,
            "new_metrics": [m["id"] for m in collected["new"]],
        }
        reports.write_execution(self.ws, rec)
        reports.append_deployments_log(self.ws, rec)
        self.record("heartbeat_completed", rec)
        self._write_state()
        self._write_session("running")
        return rec

    # ------------------------------------------------------------------ the schedule
    def run(self) -> dict:
        sched = self.cfg.schedule
        adapt = sched.adaptive_timing
        interval = timedelta(minutes=sched.planning_interval_minutes)
        hb_normal = timedelta(minutes=sched.heartbeat_minutes)
        hb = hb_normal
        t_meeting = self.clock.now()
        t_heartbeat: datetime | None = None
        last_meeting: datetime | None = None
        self._write_session("running")
        self.record("session_started", {"session_id": self.session_id, "time_scale": self.options.time_scale, "meetings": self.options.meetings})
        stopped = False
        while True:
            meeting_next = t_heartbeat is None or t_meeting <= t_heartbeat
            due = t_meeting if meeting_next else t_heartbeat
            if meeting_next and self.options.meetings is not None and self.meetings_held >= self.options.meetings:
                break  # the last meeting's execution phase is over
            if not self.clock.sleep_until(due):
                stopped = True
                break
            now = self.clock.now()
            if meeting_next:
                self.hold_meeting()
                last_meeting = now
                t_meeting = now + interval
                t_heartbeat = now
                hb = hb_normal
                continue
            rec = self.heartbeat()
            if self.clock.stop_event.is_set():
                stopped = True
                break
            now = self.clock.now()
            remaining = rec["remaining"]
            new_hb, new_meeting, why = hb_normal, t_meeting, None
            if adapt.enabled and last_meeting is not None:
                if remaining == 0:
                    earliest = max(last_meeting + timedelta(minutes=adapt.min_planning_interval_minutes), now)
                    if earliest < t_meeting:
                        new_meeting, why = earliest, "handoff drained"
                else:
                    left = max(0, math.ceil((t_meeting - now) / hb_normal) - 1)  # heartbeats before the meeting
                    capacity = left * sched.actions_per_heartbeat
                    if remaining > adapt.backlog_factor * capacity:
                        new_hb = max(timedelta(minutes=adapt.min_heartbeat_minutes), hb_normal / 2)
                        needed = math.ceil(remaining / sched.actions_per_heartbeat) * new_hb
                        latest = last_meeting + timedelta(minutes=adapt.max_planning_interval_minutes)
                        if now + needed > t_meeting:
                            new_meeting = min(latest, max(t_meeting, now + needed))
                        why = f"{remaining} actions pending, {capacity} fit before the meeting"
            if new_hb != hb or new_meeting != t_meeting:
                log.info(
                    "⏱ Timing: heartbeat every %.1f min, next meeting at %s (was %s): %s",
                    new_hb.total_seconds() / 60, new_meeting.strftime("%H:%M:%S"), t_meeting.strftime("%H:%M:%S"), why or "backlog cleared",
                )
                self.record("timing_changed", {"heartbeat_minutes": new_hb.total_seconds() / 60, "next_meeting": new_meeting.isoformat(), "was": t_meeting.isoformat(), "reason": why or "backlog cleared"})
            hb, t_meeting = new_hb, new_meeting
            t_heartbeat = now + hb
            if remaining == 0 and t_heartbeat > t_meeting:
                t_heartbeat = t_meeting
        status = "stopped" if stopped else "finished"
        self.record("session_finished", {"status": status, "meetings_held": self.meetings_held, "heartbeats": self.heartbeats})
        self._write_session(status)
        return {"status": status, "meetings": self.meetings_held, "heartbeats": self.heartbeats, "session_id": self.session_id}

    def close(self) -> None:
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



def __getattr__(name: str):  # ``cvagents.coordinator.run_system`` kept for older callers
    if name == "run_system":
        from .runner import run_system

        return run_system
    raise AttributeError(name)
