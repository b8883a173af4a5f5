"""The rollout as the execution monitor shows it: stages and their traffic, the controller's
decisions, the promotions and rollbacks the metric charts mark, the current stage's gates."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from cvagents.config import CoordinationConfig
from cvagents.ui.source import SIM_TIME, Source, short_time, utc

if TYPE_CHECKING:
    import pandas as pd  # imported where used: the monitors' import stays light


def deployments_table(
    rollout: dict | None, controller: dict | None = None, cfg: CoordinationConfig | None = None
) -> pd.DataFrame:
    """Each stage, its share of traffic (the run's stage plan), the version live in it and the
    controller's view of it."""
    import pandas as pd

    rows = []
    stages = (rollout or {}).get("stages") or {}
    plan = {k: v.get("traffic") for k, v in ((rollout or {}).get("plan") or {}).items() if isinstance(v, dict)}
    if cfg is not None:  # the whole plan; the state's "plan" holds only the stages in play
        plan = {**{k: sp.traffic for k, sp in cfg.rollout.stages.items()}, **plan}
    ctl = (controller or {}).get("stages") or {}
    current = ((rollout or {}).get("current") or {}).get("stage")
    order = (rollout or {}).get("stages_order") or list(stages) or list(plan)
    for stage in order:
        live = stages.get(stage)
        share = plan.get(stage)
        rows.append(
            {
                "stage": stage,
                "traffic": "—" if share is None else f"{share:.0%}",
                "live version": (live or {}).get("version") or "—",
                "sha256": ((live or {}).get("sha256") or "")[:12] or "—",
                "status": (ctl.get(stage) or {}).get("status") or ("deployed" if live else ""),
                "current": "◀ current" if stage == current else "",
            }
        )
    return pd.DataFrame(rows, columns=["stage", "traffic", "live version", "sha256", "status", "current"])


def _decision_lines(src: Source, n: int) -> list[dict]:
    out = []
    for line in src.tail_lines(src.paths.decisions, n, max_bytes=max(65536, n * 2048)):
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # a line the mirror has not finished copying
    return out


def controller_decisions(src: Source, rollout: dict | None, n: int = 8) -> pd.DataFrame:
    """The rollout controller's latest decisions (promotion, rollback, pause, gates passed, …),
    newest first: the tail of ``reports/rollout/decisions.jsonl`` (appended as each is made,
    so it is ahead of the state snapshot in the middle of a heartbeat), or the snapshot's."""
    import pandas as pd

    recent = _decision_lines(src, n) or ((rollout or {}).get("rollout") or {}).get("recent_decisions") or []
    rows = [
        {**{k: d.get(k) for k in ("kind", "stage", "outcome", "reason")}, SIM_TIME: short_time(d.get("time"))}
        for d in recent[-n:]
    ]
    return pd.DataFrame(rows[::-1], columns=[SIM_TIME, "kind", "stage", "outcome", "reason"])


EVENTS = ("deployment", "promotion", "rollback")  # what changes the version in a stage


def rollout_events(src: Source, n: int = 400) -> pd.DataFrame:
    """Deployments, promotions and rollbacks (``reports/rollout/decisions.jsonl``, the newest
    ``n`` decisions) at their simulated time, oldest first: the metric charts mark promotions
    and rollbacks, and start a stage's line anew at each of them."""
    import pandas as pd

    rows = [
        {"time": utc(d.get("time")), "kind": d.get("kind"), "stage": d.get("stage")}
        for d in _decision_lines(src, n)
        if d.get("kind") in EVENTS and d.get("time")
    ]
    return pd.DataFrame(rows, columns=["time", "kind", "stage"])


def gates_table(rollout: dict | None) -> pd.DataFrame:
    import pandas as pd

    cur = (rollout or {}).get("current") or {}
    rows = [
        {"gate": g.get("gate"), "status": g.get("status"), "value": g.get("value"), "threshold": g.get("threshold")}
        for g in cur.get("gates") or []
    ]
    return pd.DataFrame(rows, columns=["gate", "status", "value", "threshold"])
