"""When the next meeting and heartbeat are due, and adaptive timing: pure functions of the
schedule, the ``schedule:`` config and what is left to do, so they are tested without a run.

Timeline (simulated time): a meeting, then heartbeats every ``heartbeat_minutes`` (the first at
once), the next meeting ``planning_interval_minutes`` later. After each heartbeat ``adapt``
brings the meeting forward when the handoff is drained (never before the minimum planning
interval), and brings heartbeats closer (and may delay the meeting, within the maximum
interval) when the backlog is longer than the heartbeats left before the meeting can carry out.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cvagents.clock import sim_label
from cvagents.config import Schedule as ScheduleConfig

__all__ = ["Schedule", "start", "after_meeting", "adapt", "describe_change"]


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def _time(s: str | None) -> datetime | None:
    return datetime.fromisoformat(s) if s else None


@dataclass(frozen=True)
class Schedule:
    """When the next meeting and heartbeat are due (simulated time); journaled in checkpoints."""

    t_meeting: datetime
    t_heartbeat: datetime | None = None  # None: the meeting comes first
    hb_minutes: float = 5.0
    last_meeting: datetime | None = None

    @property
    def meeting_next(self) -> bool:
        """The next step is the meeting (it is due no later than the next heartbeat)."""
        return self.t_heartbeat is None or self.t_meeting <= self.t_heartbeat

    @property
    def due(self) -> datetime:
        """When the next step is due."""
        return self.t_meeting if self.meeting_next or self.t_heartbeat is None else self.t_heartbeat

    def as_dict(self) -> dict[str, Any]:
        return {
            "next_meeting": _iso(self.t_meeting),
            "next_heartbeat": _iso(self.t_heartbeat),
            "heartbeat_minutes": self.hb_minutes,
            "last_meeting": _iso(self.last_meeting),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Schedule:
        return cls(
            datetime.fromisoformat(d["next_meeting"]),
            _time(d.get("next_heartbeat")),
            float(d["heartbeat_minutes"]),
            _time(d.get("last_meeting")),
        )


def start(now: datetime, cfg: ScheduleConfig) -> Schedule:
    """A new session: the first meeting at once."""
    return Schedule(now, None, cfg.heartbeat_minutes, None)


def after_meeting(now: datetime, cfg: ScheduleConfig) -> Schedule:
    """After a meeting held at ``now``: the first heartbeat at once, the next meeting a
    planning interval later."""
    return Schedule(now + timedelta(minutes=cfg.planning_interval_minutes), now, cfg.heartbeat_minutes, now)


def adapt(s: Schedule, cfg: ScheduleConfig, remaining: int, now: datetime) -> tuple[Schedule, dict[str, Any] | None]:
    """The schedule after a heartbeat that left ``remaining`` actions of the handoff undone, and
    the change to journal (``timing_changed``: heartbeat_minutes, next_meeting, was, reason), or
    None when the meeting time and the heartbeat interval stay as they were."""
    adaptive = cfg.adaptive_timing
    hb_normal = timedelta(minutes=cfg.heartbeat_minutes)
    hb = timedelta(minutes=s.hb_minutes)
    t_meeting = s.t_meeting
    new_hb, new_meeting, why = hb_normal, t_meeting, None
    if adaptive.enabled and s.last_meeting is not None:
        if remaining == 0:
            earliest = max(s.last_meeting + timedelta(minutes=adaptive.min_planning_interval_minutes), now)
            if earliest < t_meeting:
                new_meeting, why = earliest, "handoff drained"
        else:
            left = max(0, math.ceil((t_meeting - now) / hb_normal) - 1)  # heartbeats before the meeting
            capacity = left * cfg.actions_per_heartbeat
            if remaining > adaptive.backlog_factor * capacity:
                new_hb = max(timedelta(minutes=adaptive.min_heartbeat_minutes), hb_normal / 2)
                needed = math.ceil(remaining / cfg.actions_per_heartbeat) * new_hb
                latest = s.last_meeting + timedelta(minutes=adaptive.max_planning_interval_minutes)
                if now + needed >= t_meeting:  # a tie goes to the meeting: it comes a heartbeat after the last one
                    new_meeting = min(latest, max(t_meeting, now + needed + new_hb))
                why = f"{remaining} actions pending, {capacity} fit before the meeting"
    change = None
    if new_hb != hb or new_meeting != t_meeting:
        change = {
            "heartbeat_minutes": new_hb.total_seconds() / 60,
            "next_meeting": new_meeting.isoformat(),
            "was": t_meeting.isoformat(),
            "reason": why or "backlog cleared",
        }
    t_heartbeat = now + new_hb
    if remaining == 0 and t_heartbeat > new_meeting:
        t_heartbeat = new_meeting
    new = dataclasses.replace(s, hb_minutes=new_hb.total_seconds() / 60, t_meeting=new_meeting, t_heartbeat=t_heartbeat)
    return new, change


def describe_change(change: dict[str, Any]) -> str:
    """The log line's text for a journaled ``timing_changed`` (the times are simulated: ``sim``)."""
    at = lambda s: sim_label(datetime.fromisoformat(s))  # noqa: E731
    return (
        f"heartbeat every {change['heartbeat_minutes']:.1f} min, next meeting at {at(change['next_meeting'])} "
        f"(was {at(change['was'])}): {change['reason']}"
    )
