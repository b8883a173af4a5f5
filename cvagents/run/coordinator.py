"""The autonomous coordinator: the loop that ties the planning meeting, the executive
heartbeat, the journal, the reports and the mirror together, on the run's clock.

It only coordinates: when each step is due is ``cvagents.run.schedule`` (adaptive timing is a
pure function there); every tool call is journaled, replayed and repaired by
``cvagents.run.recorder``; resuming a session is ``cvagents.run.recovery``; what the run has
done is ``cvagents.run.progress``; the reports are ``cvagents.run.reports``.

Durability: the journal is the source of truth. A step is journaled as it happens
(``meeting_started`` … ``meeting_completed``; ``heartbeat_started``, ``action_started``,
``tool_started``, ``tool_call``, ``action_finished`` … ``heartbeat_completed``); its reports are
written from the journaled dicts; then a ``checkpoint`` record holds the run's whole progress
and the schedule. ``prepare()`` on a session with a journal resumes it: it restores the last
checkpoint and finishes the step after it without repeating what the journal shows was done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from cvagents.clock import Clock, ManualClock, stamp
from cvagents.config import Settings
from cvagents.durability.atomic import atomic_write_json, read_json
from cvagents.durability.crashpoints import crashpoint
from cvagents.durability.mirror import Mirror
from cvagents.durability.session import SessionStatus
from cvagents.execution.executive import Executive
from cvagents.execution.tools import ToolContext, default_registry
from cvagents.llm.cost import CostLedger
from cvagents.planning.handoff import Handoff, HandoffAction, handoff_or_reason
from cvagents.planning.meeting import Meeting
from cvagents.planning.team import Teams, build_teams
from cvagents.rollout import controller as rollout
from cvagents.rollout import metrics_store
from cvagents.run import recovery, reports, schedule, spans
from cvagents.run.logs import remove_logging, setup_logging
from cvagents.run.options import RunOptions, install_sigint
from cvagents.run.progress import Progress, finished_record, heartbeat_record
from cvagents.run.rebuild import catch_up as catch_up_reports
from cvagents.run.recorder import Recorder
from cvagents.run.recovery import ActionReplay, PendingHeartbeat, PendingMeeting, ResponseMemo
from cvagents.run.roster import fallbacks, roster
from cvagents.run.session import RunSession, SessionExistsError
from cvagents.workspace import Workspace

__all__ = ["Coordinator", "RunOptions", "SessionExistsError", "install_sigint"]

log = logging.getLogger("cvagents.run")


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
        self.agents = roster(self.teams.all(), settings.meeting.defaults.local_model)  # who serves each agent
        self._log_handlers = setup_logging(self.ws, console=options.console)
        try:  # a damaged journal or session.json is refused here: let go of the log first
            self.session = RunSession(self.ws, self.cfg, self.clock.now(), options)
        except BaseException:
            remove_logging(self._log_handlers)
            raise
        self.session_id, self.session_dir = self.session.session_id, self.session.session_dir
        self.journal, self.resuming = self.session.journal, self.session.resuming
        self.record = self.session.record
        self.recorder = Recorder(default_registry(), self.record)
        self.executive = Executive(
            self.teams.executive,
            self.recorder.registry,
            self._tool_context,
            max_tool_steps=settings.meeting.defaults.max_tool_steps,
            max_tokens=settings.meeting.defaults.max_tokens,
            record=self.record,
        )
        self.progress = Progress(schedule.start(self.clock.now(), self.cfg.schedule))
        self.on_step: Callable[[str, dict], None] | None = None
        self.resume_info: dict[str, Any] | None = None
        self._pending: PendingMeeting | PendingHeartbeat | None = None
        self._prepared = False

    @property
    def mirror(self) -> Mirror | None:
        """The background mirror of the session (None: not mirrored, or stopped by the caller)."""
        return self.session.mirror

    @mirror.setter
    def mirror(self, value: Mirror | None) -> None:
        self.session.mirror = value

    @property
    def meetings_held(self) -> int:
        return self.progress.meetings_held

    @property
    def heartbeats(self) -> int:
        return self.progress.heartbeats

    # ------------------------------------------------------------------ plumbing
    def _tool_context(self, key: str) -> ToolContext:
        return ToolContext(
            self.ws,
            self.cfg,
            action_key=key,
            now=self.clock.now,
            log=logging.getLogger("cvagents.execution.tools"),
            record=self.record,
        )

    def _meeting(self, memo: ResponseMemo | None) -> Meeting:
        """The planning meeting; ``memo``: the responses a resumed meeting journaled already."""
        take = (lambda agent, purpose, h: memo.take((agent, purpose, h))) if memo is not None else None
        return Meeting.from_settings(self.teams, self.settings, record=self.session.note, memo=take)

    def mirror_status(self) -> dict | None:
        return self.session.mirror_status()

    def _write_session(self, status: SessionStatus) -> None:
        self.session.write_status(
            status,
            {
                "config_hash": self.settings.config_hash(),
                "time_scale": self.options.time_scale,
                "providers": sorted({f"{a.provider.name}:{a.provider.model}" for a in self.teams.all().values()}),
                "agents": self.agents,
                "meetings_held": self.meetings_held,
                "heartbeats": self.heartbeats,
                "updated": self.clock.now().isoformat(),
                "last_resume": self.resume_info,
            },
        )

    def _handoff(self) -> tuple[Handoff | None, str | None]:
        return handoff_or_reason(
            self.ws.handoff_file, set(self.teams.executive), self.settings.meeting.meeting.max_actions
        )

    def state(self) -> dict[str, Any]:
        """The rollout state the agents are given."""
        return self.progress.agent_state(self.ws, self.cfg, self._handoff()[0])

    # ------------------------------------------------------------------ the two steps
    def hold_meeting(self, pending: PendingMeeting | None = None) -> dict:
        if pending is None:
            now = self.clock.now()
            number = self.meetings_held + 1
            meeting_id = f"meeting_{stamp(now)}"
            log.info(
                "📊 Planning meeting %d: 🎯 Initiating Planning Team Meeting... (%s = sim start)", number, meeting_id
            )
            state = self.state()
            earlier = self.progress.recent_summaries(self.settings.meeting.meeting.summaries_in_context)
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
        else:
            d = pending.started
            now, number, meeting_id = pending.time, d["number"], d["meeting_id"]
            state, earlier = d["state"], d["earlier"]
            log.info(
                "🔁 Planning meeting %d (%s) resumes: %d agent responses already journaled are reused",
                number,
                meeting_id,
                len(pending.responses),
            )
        meeting = self._meeting(pending.responses if pending is not None else None)
        outcome = meeting.hold(meeting_id, number, now.strftime("%Y-%m-%dT%H:%M:%S"), state, earlier)
        outcome.notes.extend(self.ledger.downgrade_summary(meeting_id=meeting_id))
        cost, saved = self.ledger.cost_by_agent(meeting_id), self.ledger.cost_by_agent(meeting_id, saved=True)
        rec = reports.meeting_record(outcome, now.strftime("%Y-%m-%dT%H:%M:%S"), cost, fallbacks(self.agents), saved)
        rec = self.record("meeting_completed", rec).data  # reports are rendered from the journaled dict
        if outcome.status == "completed":
            log.info(
                "✅ Meeting complete! (%.1f s) 📊 Agents participated: %d 📋 Actions identified: %d",
                outcome.duration_s,
                len(outcome.participants),
                outcome.handoff.count if outcome.handoff else 0,
            )
        else:
            log.info("❌ Meeting failed (%s): the previous handoff stays in place", outcome.no_plan_reason)
        self.complete_meeting(rec, now)
        return rec

    def complete_meeting(self, rec: dict, now: datetime) -> None:
        """Reports, progress and schedule after a journaled meeting; the checkpoint last."""
        reports.write_meeting(self.ws, rec)
        crashpoint("meeting:after_reports")
        self.progress.meeting_held(rec, now, self.cfg.schedule, self.settings.meeting.meeting.summaries_in_context)
        self._checkpoint("meeting", rec)

    @spans.heartbeat
    def heartbeat(self, pending: PendingHeartbeat | None = None) -> dict:
        runs: list[dict] = []
        p = self.progress
        if pending is None:
            now = self.clock.now()
            p.heartbeats += 1
            hb_id = stamp(now)
            log.info("💓 HEARTBEAT CYCLE #%d: %s (simulated)", p.heartbeats, now.strftime("%Y-%m-%d %H:%M:%S"))
            self.record(
                "heartbeat_started", {"heartbeat": p.heartbeats, "heartbeat_id": hb_id, "time": now.isoformat()}
            )
        else:
            now, hb_id = pending.time, pending.started["heartbeat_id"]
            p.heartbeats = pending.started["heartbeat"]
            runs = list(pending.runs)
            log.info(
                "🔁 HEARTBEAT CYCLE #%d (%s) resumes: %d actions already finished%s",
                p.heartbeats,
                hb_id,
                len(runs),
                f", {pending.inflight.key} was under way" if pending.inflight else "",
            )
        h, error = self._handoff()
        if error:
            log.info("❌ Handoff rejected: %s", error)
        if h:
            room = self.cfg.schedule.actions_per_heartbeat - len(runs)
            todo = self.executive.next_actions(h.actions, h.meeting_id, p.finished, room) if room > 0 else []
            inflight = pending.inflight if pending is not None else None
            for i, a in enumerate(todo):
                if self.clock.stop_event.is_set() and (runs or i):
                    break
                key = f"{h.meeting_id}#{a.id}"
                fin = self._carry_out(
                    a, h.meeting_id, inflight if inflight is not None and inflight.key == key else None
                )
                p.action_finished(fin)
                runs.append(fin)
                self.session.kick_mirror()
        if pending is not None and pending.merged_before is not None:
            before = pending.merged_before
        else:
            before = len(metrics_store.load(self.ws.metrics_file).get("merged", []))
            self.record("metrics_collecting", {"heartbeat": p.heartbeats, "merged_before": before})
        metrics_store.collect(self.ws.metrics_file, self.ws.evaluations_dir, now.isoformat())
        if pending is None or not pending.reviewed:
            rollout.after_heartbeat(
                self.ws,
                self.cfg,
                self.clock.now().isoformat(),
                record=self.session.note,
                settings_hash=self.settings.config_hash(),
            )  # the gates decide: rollback, pause, record
            self.record("rollout_reviewed", {"heartbeat": p.heartbeats})
        rec = heartbeat_record(
            heartbeat_id=hb_id,
            heartbeat=p.heartbeats,
            timestamp=now.strftime("%Y-%m-%dT%H:%M:%S"),
            meeting_id=h.meeting_id if h else None,
            handoff_error=error,
            runs=runs,
            remaining=len(p.open_actions(h)),
            new_metrics=list(metrics_store.load(self.ws.metrics_file).get("merged", []))[before:],
        )
        rec = self.record("heartbeat_completed", rec).data  # reports are rendered from the journaled dict
        self.complete_heartbeat(rec)
        return rec

    def _carry_out(self, a: HandoffAction, meeting_id: str, replay: ActionReplay | None) -> dict:
        """One action, journaled as started (unless ``replay``: it was, and is carried on) and finished."""
        key = f"{meeting_id}#{a.id}"
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
        run = self.executive.carry_out(a, meeting_id, state, self.recorder.action(key, replay))
        fin = finished_record(run, self.heartbeats)
        self.record("action_finished", fin)
        return fin

    def complete_heartbeat(self, rec: dict, timing_logged: dict | None = None) -> None:
        """Reports, adaptive timing and the checkpoint after a journaled heartbeat."""
        reports.write_execution(self.ws, rec)
        reports.append_deployments_log(self.ws, rec)
        crashpoint("heartbeat:after_reports")
        p = self.progress
        p.heartbeats = rec["heartbeat"]
        p.schedule, change = schedule.adapt(p.schedule, self.cfg.schedule, rec["remaining"], self.clock.now())
        if change is not None and timing_logged is None:
            log.info("⏱ Timing: %s", schedule.describe_change(change))
            self.record("timing_changed", change)
        self._checkpoint("heartbeat", rec)

    def _checkpoint(self, step: str, rec: dict) -> None:
        now = self.clock.now()
        rollout_state = {"updated": now.isoformat(), "session_id": self.session_id, **self.state()}
        cp = self.record(
            "checkpoint",
            {
                "step": step,
                "time": now.isoformat(),
                **self.progress.checkpoint(),
                "ledger": self.ledger.snapshot(),
                "rollout_state": rollout_state,
                "controller": read_json(rollout.controller_file(self.ws)),
            },
        )
        self._write_derived(cp.data["rollout_state"])  # rendered from the journaled record
        self.session.retain()
        self.session.kick_mirror()
        if self.on_step is not None:
            self.on_step(step, rec)

    def _write_derived(self, rollout_state: dict) -> None:
        """``reports/rollout_state.json``: the snapshot the agents see, for monitors to read;
        ``reports/costs.json``: spending per agent, meeting and day, and every downgrade."""
        reports.write_costs(self.ws, self.ledger)
        atomic_write_json(self.ws.reports_dir / "rollout_state.json", rollout_state)
        self._write_session(SessionStatus.RUNNING)

    # ------------------------------------------------------------------ start or resume
    def prepare(self) -> dict[str, Any]:
        """Start the session, or restore it from its journal: the progress of the last
        checkpoint, the clock where the journal ended, and the unfinished step (run first by ``run``)."""
        if self._prepared:
            return self.resume_info or {}
        self._prepared = True
        if not self.resuming:
            now = self.clock.now()
            self.progress = Progress(schedule.start(now, self.cfg.schedule))
            self._write_session(SessionStatus.RUNNING)
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
        tail = recovery.scan(self.journal)
        self.progress, t = recovery.restore(tail, self.cfg.schedule, self.clock.now())
        cp = tail.checkpoint
        catch_up_reports(self.ws, self.journal, cp.seq if cp else 0)  # decisions a kill kept out of reports/
        if cp is not None:
            self.ledger.restore(cp.data["ledger"])
        if isinstance(self.clock, ManualClock) or self.clock.time_scale != 1.0:
            self.clock.jump_to(t)  # simulated time goes on from where the journal ended
        recovery.recharge(self.ledger, tail.responses, self.settings.meeting.pricing)  # on the day they were paid
        self._pending = tail.pending
        self.resume_info = info = recovery.resume_info(tail, t, self.options.from_mirror, self.journal.repairs)
        if self.options.rebuild_reports:
            from cvagents.run.rebuild import rebuild_reports

            rebuild_reports(self.ws.root, self.session_id, settings=self.settings, journal=self.journal)
        if cp is not None:
            self._write_derived(cp.data["rollout_state"])
        else:
            self._write_session(SessionStatus.RUNNING)
        recovery.clean_temps(self.ws, self.session_dir)
        log.info(
            "🔁 Resuming session %s at journal record %d: %d meetings, %d heartbeats done; %s",
            self.session_id,
            tail.last_seq,
            self.meetings_held,
            self.heartbeats,
            info["unfinished_step"] or "no step was under way",
        )
        self.record("session_resumed", info)
        return info

    # ------------------------------------------------------------------ the loop
    @spans.run
    def run(self) -> dict:
        self.prepare()
        if self.mirror is not None:
            self.mirror.start()
        pending, self._pending = self._pending, None
        stopped = False
        if pending is not None:
            recovery.finish(pending, self)
            stopped = isinstance(pending, PendingHeartbeat) and self.clock.stop_event.is_set()
        while not stopped:
            s = self.progress.schedule
            if s.meeting_next and self.options.meetings is not None and self.meetings_held >= self.options.meetings:
                break  # the last meeting's execution phase is over
            if not self.clock.sleep_until(s.due):
                stopped = True
                break
            if s.meeting_next:
                self.hold_meeting()
                continue
            self.heartbeat()
            if self.clock.stop_event.is_set():
                stopped = True
        return self.end(SessionStatus.STOPPED if stopped else SessionStatus.FINISHED)

    def end(self, status: SessionStatus, **more: Any) -> dict:
        """Journal and mark the session ``status`` (also after a KeyboardInterrupt); the result."""
        m, h = self.meetings_held, self.heartbeats
        self.record("session_finished", {"status": status, "meetings_held": m, "heartbeats": h, **more})
        self._write_session(status)
        self.session.kick_mirror()
        # status as a plain string: notebooks print this dict
        return {"status": status.value, "meetings": m, "heartbeats": h, "session_id": self.session_id}

    def close(self) -> None:
        """The session closed, then no partial file left behind (a run stopped by a full disk
        or a read-only folder leaves what it wrote whole, nothing half-written)."""
        try:
            self.session.close()
        finally:
            try:
                recovery.clean_temps(self.ws, self.session_dir)
            except OSError as e:  # the folder the run could not write to may not allow it either
                log.warning("partial files could not be removed: %s", e)
            remove_logging(self._log_handlers)
