"""Live ipywidgets dashboards for the monitor notebooks (ipywidgets 7.7, Colab's, and 8.x).

    from cvagents.ui.dashboard import monitor_execution
    dash = monitor_execution("/content/drive/MyDrive/.../mirror", refresh_seconds=30)

A dashboard reads a workspace, local or mirrored (``cvagents.ui.dashboard_data``), and shows
panels: tables as HTML, figures as PNG (``cvagents.ui.plots``), refreshed on a background
thread (``cvagents.ui.monitor``), or rendered once with ``refresh_seconds=0``.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from cvagents.ui import dashboard_data as dd
from cvagents.ui.monitor import Dashboard
from cvagents.ui.panels import figure, fmt, html_block, pre, table_html

__all__ = [
    "Dashboard",
    "PlanningDashboard",
    "ExecutionDashboard",
    "SystemDashboard",
    "monitor_planning",
    "monitor_execution",
    "monitor_system",
    "table_html",
]


class PlanningDashboard(Dashboard):
    title = "Planning Team monitor"
    default_refresh = 60.0

    def __init__(self, workspace, refresh_seconds: float | None = None, *, meetings: int = 10, **kw):
        self.meetings = meetings
        super().__init__(workspace, refresh_seconds, **kw)

    def panel_specs(self):
        return [
            ("meetings", "Latest meetings", "html"),
            ("decisions", "Decisions of the latest meeting", "html"),
            ("actions", "Action table (the plan the Executive Team works on)", "html"),
            ("participation", "Agent participation", "figure"),
            ("tokens_fig", "Tokens and cost per agent", "figure"),
            ("tokens", "Tokens and cost per agent (table)", "html"),
        ]

    def collect(self, src):
        from cvagents.ui import plots

        p = dd.planning_data(src, meetings=self.meetings)
        latest = p["latest"] or {}
        acts = p["actions"]
        counts = acts["status"].value_counts().to_dict() if len(acts) else {}
        summary = (
            f"Meetings shown: {len(p['meetings'])} · latest <b>{html.escape(str(latest.get('meeting_id', '—')))}</b> "
            f"({html.escape(str(latest.get('status', '—')))}) · actions: {len(acts)} "
            + "("
            + ", ".join(f"{v} {html.escape(str(k))}" for k, v in sorted(counts.items()))
            + ")"
            if latest
            else "No meeting yet."
        )
        if p["agents"]:  # who fell back to the offline provider (sessions that record it)
            fell = "fallback" in p["agents"]
            color = "#c62828" if fell else "#2e7d32"
            summary += f"<br><span style='color:{color}'>{'⚠' if fell else '✓'} {html.escape(p['agents'])}</span>"
        risks = latest.get("risks") or []
        cross = latest.get("cross_pollination") or []
        g = latest.get("go_no_go")
        decisions = table_html(p["decisions"], empty="no decisions yet")
        if g:
            decisions += f"<div style='font-size:13px'><b>Go/no-go for {html.escape(str(g.get('stage')))}: {html.escape(str(g.get('decision')).upper())}</b> — {html.escape(str(g.get('reason')))}</div>"
        if risks:
            decisions += (
                "<div style='font-size:12px'><b>Risks:</b> " + html.escape("; ".join(map(str, risks))) + "</div>"
            )
        if cross:
            decisions += (
                "<div style='font-size:12px'><b>Cross-pollination:</b> "
                + html.escape("; ".join(map(str, cross)))
                + "</div>"
            )
        head = (
            f"<div style='font-size:12px;color:#555'>from {html.escape(p['plan_meeting'])}</div>"
            if p["plan_meeting"]
            else ""
        )
        return summary, {
            "meetings": html_block(table_html(p["meetings"], empty="no meeting yet")),
            "decisions": html_block(decisions),
            "actions": html_block(head + table_html(p["actions"], empty="no actions handed off yet")),
            "participation": figure((p["participation"],), lambda: plots.participation_figure(p["participation"])),
            "tokens_fig": figure(
                (p["tokens"], p["tokens_scope"]), lambda: plots.tokens_figure(p["tokens"], p["tokens_scope"])
            ),
            "tokens": html_block(
                f"<div style='font-size:12px;color:#555'>{html.escape(p['tokens_scope'])}</div>"
                + table_html(p["tokens"], empty="no usage yet")
            ),
        }


class ExecutionDashboard(Dashboard):
    title = "Executive Team monitor"
    default_refresh = 30.0

    def __init__(
        self,
        workspace,
        refresh_seconds: float | None = None,
        *,
        heartbeats: int = 24,
        points: int = 200,
        coordination_config=None,
        **kw,
    ):
        self.heartbeats, self.points = heartbeats, points
        self.coordination_config = coordination_config
        self.awaiting: dict | None = None  # the promotion waiting for a human (rollout.require_approval)
        self.is_mirror = False
        self.approval_message = ""
        self._approve_w: dict[str, Any] | None = None
        super().__init__(workspace, refresh_seconds, **kw)

    def controls(self):
        import ipywidgets as w

        self._approve_w = {
            "text": w.HTML(value=""),
            "button": w.Button(
                description="Approve",
                button_style="warning",
                icon="check",
                layout=w.Layout(width="auto", display="none"),
            ),
        }
        self._approve_w["button"].on_click(lambda _b: self.approve())
        return [w.HBox([self._approve_w["button"], self._approve_w["text"]])]

    def approval_html(self) -> str:
        a = self.awaiting
        if not a:
            return self.approval_message
        what = f"<b>{html.escape(str(a.get('version')))}</b> (sha256 {html.escape(str(a.get('sha256'))[:12])}) is waiting for a human approval before <b>{html.escape(str(a.get('stage')))}</b>"
        if self.is_mirror:  # the run reads approvals from its own workspace, on the coordinator's VM
            return f"⏸ {what}. Approve it where the run is: <code>{html.escape(str(a.get('command')))}</code>"
        return f"⏸ {what}."

    def update_controls(self) -> None:
        if self._approve_w is None:
            return
        self._approve_w["text"].value = self.approval_html()
        button = self._approve_w["button"]
        a = self.awaiting
        show = bool(a) and not self.is_mirror
        if a and show:
            button.description = f"Approve {a.get('version')} for {a.get('stage')}"
        button.layout.display = "" if show else "none"

    def approve(self, by: str | None = None) -> dict | None:
        """Record the approval of the promotion waiting now (what the button does; the same as
        ``cvagents approve``). Only on the run's own workspace: a mirror is read-only."""
        a = self.awaiting
        if not a or self.is_mirror:
            return None
        from cvagents.config import default_project_root, load_coordination_config
        from cvagents.rollout import approval
        from cvagents.workspace import Workspace

        if self.coordination_config:
            ws = Workspace.from_config(Path(self.workspace), load_coordination_config(Path(self.coordination_config)))
        else:  # the config the run left in its workspace (the project's, for a workspace from before)
            project = load_coordination_config(default_project_root() / "configs" / "autonomous_coordination.yaml")
            ws = Workspace.open(Path(self.workspace), project)
        rec = approval.approve(
            ws,
            ws.config,
            a["stage"],
            sha=a["sha256"],
            by=by,
            note="approved from the execution monitor",
        )
        self.approval_message = f"✅ Approved {html.escape(str(a.get('version')))} for {html.escape(str(a['stage']))}: the run promotes it at its next meeting."
        self.awaiting = None
        self.update_controls()
        return rec

    def panel_specs(self):
        return [
            ("rollout", "Rollout state and the last gate decisions", "html"),
            ("deployments", "Deployments per stage", "html"),
            ("models", "Models: the champion and the candidates", "html"),
            (
                "metrics",
                "NDCG@10, latency P95 and SLO compliance against the gates, per stage (simulated time; ▲ promotions, ▼ rollbacks)",
                "figure",
            ),
            ("executions_fig", "Tool executions", "figure"),
            ("executions", "Latest tool executions", "html"),
            ("log", "executive.log (last lines)", "html"),
        ]

    def collect(self, src):
        from cvagents.ui import plots

        e = dd.execution_data(src, heartbeats=self.heartbeats, points=self.points)
        r = e["rollout"] or {}
        cur = r.get("current") or {}
        m = e["latest_metrics"] or {}
        c = e["counts"]
        self.is_mirror = src.is_mirror
        self.awaiting = (r.get("rollout") or {}).get("awaiting_approval")
        parts = []
        if cur:
            line = f"Stage <b>{html.escape(str(cur.get('stage')))}</b>, version <b>{html.escape(str(cur.get('version')))}</b>, gates <b>{html.escape(str(cur.get('verdict', '—')).upper())}</b>, next: {html.escape(str(r.get('next_stage') or '—'))}"
            if e["paused"]:
                line += f" · <b style='color:#ef6c00'>PAUSED</b>: {html.escape(str((r.get('rollout') or {}).get('reason') or cur.get('reason') or ''))}"
            parts.append(line)
            if self.awaiting:
                parts.append(self.approval_html())
        else:
            parts.append("Nothing deployed yet")
        if m:
            ci = m.get("ndcg_at_10_ci95") or [None, None]
            slo = m.get("slo_compliance")
            parts.append(
                f"Latest evaluation ({html.escape(str(m.get('stage')))}): NDCG@10 <b>{fmt(m.get('ndcg_at_10'))}</b> [{fmt(ci[0])}, {fmt(ci[1])}] · "
                f"P95 <b>{fmt(m.get('latency_p95_ms'))} ms</b> · SLO <b>{'—' if slo is None else f'{slo:.2%}'}</b>"
            )
        parts.append(
            f"Tool executions (last {e['heartbeats']} heartbeats): <b>{c['succeeded']}</b> succeeded, <b>{c['failed']}</b> failed, <b>{c['refused']}</b> refused, <b>{c['unverified']}</b> actions without a tool call (unverified)"
        )
        summary = "<br>".join(parts)
        rollout = (
            (
                f"<div style='font-size:13px'>{html.escape(str(cur.get('stage')))} {html.escape(str(cur.get('version')))}: gates {html.escape(str(cur.get('verdict', '')).upper())}</div>"
                if cur
                else ""
            )
            + table_html(e["gates"], empty="no stage deployed, no gates yet")
            + "<div style='font-size:12px;font-weight:600'>The rollout controller's latest decisions</div>"
            + table_html(e["decisions"], empty="no controller decision yet")
            + "<div style='font-size:12px;font-weight:600'>Go/no-go of the latest meetings</div>"
            + table_html(e["go_no_go"], empty="no go/no-go decision yet")
        )
        deploy = (
            table_html(e["deployments"], empty="no rollout state yet")
            + "<div style='font-size:12px;font-weight:600'>deployments log</div>"
            + pre(e["deploy_log"])
        )
        champ = e["models"]["champion"]
        models = (
            "<div style='font-size:13px'>"
            + (
                f"Champion in production: <b>{html.escape(str(champ['name'] or '(unnamed)'))}</b> "
                f"{html.escape(str(champ['version']))} (sha256 {html.escape(champ['sha256'][:12])})"
                if champ
                else "No champion in production yet"
            )
            + "</div>"
            + table_html(e["models"]["candidates"], empty="no candidate yet (cvagents submit)")
        )
        execs = e["executions"].iloc[::-1]
        thr, md, stages, events = e["thresholds"], e["metrics"], e["stages"], e["events"]
        return summary, {
            "rollout": html_block(rollout),
            "deployments": html_block(deploy),
            "models": html_block(models),
            "metrics": figure((md, thr, stages, events), lambda: plots.metrics_figure(md, thr, stages, events)),
            "executions_fig": figure((e["per_heartbeat"],), lambda: plots.executions_figure(e["per_heartbeat"])),
            "executions": html_block(
                table_html(execs.drop(columns=["heartbeat"]), max_rows=15, empty="no tool executions yet")
            ),
            "log": html_block(
                pre(e["log_tail"])
                if e["log_tail"]
                else f"<div style='color:#666;font-size:12px'>{html.escape(src.paths.log)} is not in this folder yet"
                + (
                    " (the mirror copies the log's last 64 KiB on each tick; a mirror written before it did so has none)"
                    if src.is_mirror
                    else ""
                )
                + "</div>"
            ),
        }


class SystemDashboard(Dashboard):
    """Both monitors in one (the unified notebook)."""

    title = "Autonomous system — live dashboard"
    default_refresh = 30.0

    def __init__(self, workspace, refresh_seconds: float | None = None, *, coordination_config=None, **kw):
        self.parts = (
            ExecutionDashboard(workspace, refresh_seconds, coordination_config=coordination_config),
            PlanningDashboard(workspace, refresh_seconds),
        )
        super().__init__(workspace, refresh_seconds, **kw)

    def controls(self):
        return self.parts[0].controls()  # the approval button

    def update_controls(self) -> None:
        self.parts[0].update_controls()

    def panel_specs(self):
        return [(f"{i}.{k}", t, kind) for i, d in enumerate(self.parts) for k, t, kind in d.panel_specs()]

    def collect(self, src):
        summaries, out = [], {}
        for i, d in enumerate(self.parts):
            s, contents = d.collect(src)
            summaries.append(s)
            out.update({f"{i}.{k}": v for k, v in contents.items()})
        return "<br>".join(summaries), out


def monitor_planning(workspace, refresh_seconds: float = 60, **kw) -> PlanningDashboard:
    """The planning monitor: latest meetings, decisions, actions, participation, tokens and cost."""
    return PlanningDashboard(workspace, refresh_seconds, **kw).show()


def monitor_execution(workspace, refresh_seconds: float = 30, **kw) -> ExecutionDashboard:
    """The execution monitor: tools, deployments, metrics against the gates, the rollout."""
    return ExecutionDashboard(workspace, refresh_seconds, **kw).show()


def monitor_system(workspace, refresh_seconds: float = 30, **kw) -> SystemDashboard:
    """Both monitors in one dashboard."""
    return SystemDashboard(workspace, refresh_seconds, **kw).show()
