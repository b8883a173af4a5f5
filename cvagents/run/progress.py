"""What a run has done so far — meetings held, heartbeats, the actions of the current handoff
that are finished, the feedback for the next meeting, the schedule — as a checkpoint holds it,
and the journal records of a heartbeat's actions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cvagents.config import CoordinationConfig
from cvagents.config import Schedule as ScheduleConfig
from cvagents.execution.executive import ActionRun, ActionStatus
from cvagents.planning.handoff import Handoff, HandoffAction, action_key, by_priority
from cvagents.rollout.state import snapshot
from cvagents.run import schedule
from cvagents.run.earlier import meeting_line
from cvagents.run.schedule import Schedule
from cvagents.workspace import Workspace

__all__ = ["OPEN_ACTIONS_SHOWN", "Phase", "Progress", "action_summary", "finished_record", "heartbeat_record"]

# The open actions a state snapshot lists (the next ones, by priority); the rest are counted.
# Every meeting_started and action_started record embeds the snapshot: it stays this size
# whatever the handoff holds.
OPEN_ACTIONS_SHOWN = 5

# Keys action_finished records hold beyond ActionRun.summary().
_RUN_EXTRA = ("duration_s", "agent", "final_text", "outcomes", "heartbeat")


def action_summary(fin: dict[str, Any]) -> dict[str, Any]:
    """An ``action_finished`` record's data as ``ActionRun.summary()`` gave it."""
    return {k: v for k, v in fin.items() if k not in _RUN_EXTRA}


def finished_record(run: ActionRun, heartbeat: int) -> dict[str, Any]:
    """The ``action_finished`` record of an action carried out in heartbeat ``heartbeat``."""
    return {
        **run.summary(),
        "duration_s": round(run.duration_s, 4),
        "agent": run.agent,
        "final_text": run.final_text,
        "outcomes": [o.as_dict() for o in run.outcomes],
        "heartbeat": heartbeat,
    }


def heartbeat_record(
    *,
    heartbeat_id: str,
    heartbeat: int,
    timestamp: str,
    meeting_id: str | None,
    handoff_error: str | None,
    runs: list[dict[str, Any]],
    remaining: int,
    new_metrics: list[str],
) -> dict[str, Any]:
    """The ``heartbeat_completed`` record: every tool call of its actions (an action that called
    no tool appears once, with its final text), the actions, what is left of the handoff."""
    return {
        "heartbeat_id": heartbeat_id,
        "heartbeat": heartbeat,
        "timestamp": timestamp,
        "meeting_id": meeting_id,
        "handoff_error": handoff_error,
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
        "actions": [{**action_summary(f), "duration_s": f["duration_s"], "final_text": f["final_text"]} for f in runs],
        "remaining": remaining,
        "new_metrics": new_metrics,
    }


@dataclass
class Phase:
    """What the executive did since the last meeting: the feedback the next meeting reads."""

    runs: list[dict] = field(default_factory=list)

    def grouped(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {s.value: [] for s in ActionStatus}
        for r in self.runs:
            out.setdefault(r["status"], []).append(r)
        return out


@dataclass
class Progress:
    """The run's state between steps; a ``checkpoint`` record holds all of it."""

    schedule: Schedule
    meetings_held: int = 0
    heartbeats: int = 0
    summaries: list[str] = field(default_factory=list)  # one line per recent meeting, for the next one
    finished: set[str] = field(default_factory=set)  # action ids of the current handoff carried out
    phase: Phase = field(default_factory=Phase)

    def checkpoint(self) -> dict[str, Any]:
        return {
            "meetings_held": self.meetings_held,
            "heartbeats": self.heartbeats,
            "summaries": list(self.summaries),
            "finished": sorted(self.finished),
            "phase": self.phase.runs,
            "schedule": self.schedule.as_dict(),
        }

    @classmethod
    def from_checkpoint(cls, d: dict[str, Any]) -> Progress:
        return cls(
            Schedule.from_dict(d["schedule"]),
            d["meetings_held"],
            d["heartbeats"],
            list(d["summaries"]),
            set(d["finished"]),
            Phase(list(d["phase"])),
        )

    def open_actions(self, h: Handoff | None) -> list[HandoffAction]:
        """The actions of handoff ``h`` not carried out yet."""
        return [a for a in h.actions if action_key(h.meeting_id, a.id) not in self.finished] if h else []

    def agent_state(self, ws: Workspace, cfg: CoordinationConfig, h: Handoff | None) -> dict[str, Any]:
        """The rollout state the agents are given: the workspace's snapshot, the open actions of
        handoff ``h`` and what the executive did since the last meeting."""
        grouped = self.phase.grouped()
        open_now = by_priority(self.open_actions(h))
        state = snapshot(
            ws,
            cfg,
            meeting_number=self.meetings_held + 1,
            last_execution=grouped,
            open_actions=[
                {"id": a.id, "action": a.action, "owner": a.owner, "priority": a.priority}
                for a in open_now[:OPEN_ACTIONS_SHOWN]
            ],
            failed_actions=grouped["failed"],
        )
        state["open_actions_count"] = len(open_now)
        return state

    def recent_summaries(self, k: int) -> list[str]:
        return self.summaries[-k:] if k > 0 else []

    def action_finished(self, fin: dict[str, Any]) -> None:
        self.finished.add(fin["action_id"])
        self.phase.runs.append(action_summary(fin))

    def meeting_held(self, rec: dict[str, Any], now: datetime, cfg: ScheduleConfig, summaries_kept: int) -> None:
        """After the journaled meeting ``rec`` held at ``now``: a new phase, its summary line, a
        new handoff's actions all open (a failed meeting leaves the old handoff in place), the
        schedule restarted from the meeting."""
        self.meetings_held = rec["number"]
        self.phase = Phase()
        mid = rec["meeting_id"]
        self.summaries.append(meeting_line(rec))
        if rec["status"] == "completed":
            self.finished = {k for k in self.finished if k.startswith(f"{mid}#")}  # a new handoff
        del self.summaries[: max(0, len(self.summaries) - max(summaries_kept, 1))]
        self.schedule = schedule.after_meeting(now, cfg)
