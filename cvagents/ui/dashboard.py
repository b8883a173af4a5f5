"""Live ipywidgets dashboards for the monitor notebooks (ipywidgets 7.7, Colab's, and 8.x).

    from cvagents.ui.dashboard import monitor_execution
    dash = monitor_execution("/content/drive/MyDrive/.../mirror", refresh_seconds=30)

A dashboard reads a workspace, local or mirrored (``cvagents.ui.dashboard_data``), and shows
panels: tables as HTML, figures as PNG (``cvagents.ui.plots``). With ``refresh_seconds > 0`` it
refreshes on a background thread that sets widget values (never ``with out:`` from a thread),
so the kernel stays free; a figure is redrawn only when its data changed, and each panel says
when it was last updated. With ``refresh_seconds=0`` it renders once as plain outputs (PNG and
HTML, which stay in a saved notebook) and returns: that is how papermill and tests run it.
"""

from __future__ import annotations

import hashlib
import html
import json
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from cvagents.ui import dashboard_data as dd
from cvagents.ui import plots

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

BANNER = {  # state -> (icon, background)
    "empty": ("⚪", "#fff8e1"),
    "partial": ("🟠", "#fff3e0"),
    "stale": ("🔴", "#ffebee"),
    "live": ("🟢", "#e8f5e9"),
    "finished": ("🔵", "#e3f2fd"),
    "stopped": ("🔵", "#e3f2fd"),
    "error": ("❗", "#ffebee"),
}
STATUS_COLORS = {
    "succeeded": "#2e7d32",
    "pass": "#2e7d32",
    "go": "#2e7d32",
    "✓": "#2e7d32",
    "failed": "#c62828",
    "fail": "#c62828",
    "no_go": "#c62828",
    "no-go": "#c62828",
    "refused": "#ef6c00",
    "inconclusive": "#ef6c00",
    "hold": "#ef6c00",
    "pending": "#616161",
}
TABLE_STYLE = "border-collapse:collapse;font-size:12px;margin:2px 0 8px 0"
CELL_STYLE = "border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top;line-height:1.35"


def _clock() -> str:
    return datetime.now().astimezone().strftime("%H:%M:%S %Z")


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "—"
    if isinstance(v, float):
        return f"{v:.4f}".rstrip("0").rstrip(".") if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, pd.Timestamp):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    return str(v)


def table_html(
    df: pd.DataFrame, *, max_rows: int | None = None, empty: str = "nothing yet", index: bool = False
) -> str:
    """A small escaped HTML table; status words (succeeded, fail, go, ...) are coloured."""
    if df is None or not len(df):
        return f"<div style='color:#666;font-size:12px'>{html.escape(empty)}</div>"
    if max_rows is not None:
        df = df.head(max_rows)
    cols = ([df.index.name or ""] if index else []) + [str(c) for c in df.columns]
    out = [
        f"<table style='{TABLE_STYLE}'><tr>"
        + "".join(f"<th style='{CELL_STYLE}'>{html.escape(c)}</th>" for c in cols)
        + "</tr>"
    ]
    for idx, row in zip(df.index, df.itertuples(index=False)):
        cells = ([idx] if index else []) + list(row)
        tds = []
        for v in cells:
            text = html.escape(_fmt(v))
            color = STATUS_COLORS.get(str(v)) or (STATUS_COLORS["failed"] if str(v).startswith("absent") else None)
            style = (
                CELL_STYLE
                + (";white-space:nowrap" if len(text) <= 24 else "")
                + (f";color:{color};font-weight:600" if color else "")
            )
            tds.append(f"<td style='{style}'>{text}</td>")
        out.append("<tr>" + "".join(tds) + "</tr>")
    return "".join(out) + "</table>"


def _pre(lines: list[str]) -> str:
    if not lines:
        return "<div style='color:#666;font-size:12px'>nothing yet</div>"
    return (
        "<pre style='font-size:11px;line-height:1.3;white-space:pre-wrap;margin:0'>"
        + html.escape("\n".join(lines))
        + "</pre>"
    )


def _signature(*parts: Any) -> str:
    h = hashlib.sha1()
    for p in parts:
        h.update(
            (
                p.to_json(date_format="iso")
                if isinstance(p, pd.DataFrame)
                else json.dumps(p, sort_keys=True, default=str)
            ).encode()
        )
    return h.hexdigest()


@dataclass
class Content:
    """What one panel shows now: HTML, or a figure drawn only when ``signature`` changed."""

    signature: str
    html: str | None = None
    figure: Callable[[], Any] | None = None


class Panel:
    """A titled figure or HTML block with an "updated at" caption; widgets made on first use."""

    def __init__(self, key: str, title: str, kind: str):
        self.key, self.title, self.kind = key, title, kind
        self.signature: str | None = None
        self.updated: str | None = None
        self.value: bytes | str | None = None
        self._w = None

    def update(self, content: Content, checked: str) -> bool:
        """Redraw if the data changed; True if it did."""
        changed = content.signature != self.signature
        if changed:
            self.value = plots.png(content.figure()) if self.kind == "figure" else content.html
            self.signature, self.updated = content.signature, checked
        if self._w is not None:
            if changed:
                self._w["body"].value = self.value
            self._w["caption"].value = self.caption(checked)
        return changed

    def caption(self, checked: str) -> str:
        same = "" if self.updated == checked else f" (unchanged at {checked})"
        return f"<div style='color:#777;font-size:11px;margin-bottom:10px'>updated {self.updated}{same}</div>"

    def title_html(self) -> str:
        return f"<div style='font-weight:600;font-size:14px;margin-top:8px'>{html.escape(self.title)}</div>"

    def widget(self):
        import ipywidgets as w

        if self._w is None:
            if self.kind == "figure":
                # natural size (a flex column would stretch it), shrunk to fit a narrow output
                body = w.Image(
                    value=self.value or b"",
                    format="png",
                    layout=w.Layout(align_self="flex-start", max_width="100%", height="auto"),
                )
            else:
                body = w.HTML(value=self.value or "")
            self._w = {"body": body, "caption": w.HTML(value=self.caption(self.updated) if self.updated else "")}
            self._w["box"] = w.VBox([w.HTML(value=self.title_html()), body, self._w["caption"]])
        return self._w["box"]


class Dashboard:
    """A set of panels over one workspace; subclasses say which panels and how to fill them."""

    title = "cvagents"
    default_refresh = 30.0
    _running: dict[str, Dashboard] = {}  # one live dashboard of each kind per kernel

    def __init__(self, workspace, refresh_seconds: float | None = None, *, stale_after_s: float | None = None):
        self.workspace = str(workspace)
        self.refresh_seconds = float(self.default_refresh if refresh_seconds is None else refresh_seconds)
        self.stale_after_s = stale_after_s
        self.panels = [Panel(*spec) for spec in self.panel_specs()]
        self.header = ""
        self.last_refresh_s: float | None = None
        self.refreshes = 0
        self.error: str | None = None
        self.health: dd.Health | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._box = None
        self._header_w = None

    # -- what subclasses provide
    def panel_specs(self) -> list[tuple[str, str, str]]:
        raise NotImplementedError

    def collect(self, src: dd.Source) -> tuple[str, dict[str, Content]]:
        """Read the workspace: (summary HTML for the header, content per panel key)."""
        raise NotImplementedError

    # -- refreshing
    def refresh(self) -> dict[str, Any]:
        """Read the workspace and update every panel; returns what it did (for tests and benchmarks)."""
        with self._lock:
            t0 = time.perf_counter()
            checked = _clock()
            try:
                src = dd.Source(self.workspace)
                summary, contents = self.collect(src)
                h = dd.health(src, refresh_seconds=self.refresh_seconds or 30, stale_after_s=self.stale_after_s)
                redrawn = [p.key for p in self.panels if p.update(contents[p.key], checked)]
                self.error = None
                self.health = h
                self.header = self._header(h, summary, checked)
            except Exception as e:  # a refresh never kills the loop; the banner says what broke
                self.error = f"{type(e).__name__}: {e}"
                self.header = self._header(
                    None, f"<pre style='font-size:11px'>{html.escape(traceback.format_exc(limit=4))}</pre>", checked
                )
                redrawn = []
            if self._header_w is not None:
                self._header_w.value = self.header
                self.update_controls()
            self.last_refresh_s = time.perf_counter() - t0
            self.refreshes += 1
            return {"seconds": self.last_refresh_s, "redrawn": redrawn, "error": self.error}

    def _header(self, h: dd.Health | None, summary: str, checked: str) -> str:
        state, message = ("error", f"Refresh failed: {self.error}") if h is None else (h.state, h.message)
        icon, bg = BANNER[state]
        where = "mirror" if h is not None and h.is_mirror else "workspace"
        every = f"refreshes every {self.refresh_seconds:g} s" if self.refresh_seconds > 0 else "rendered once"
        return (
            f"<div style='font-size:18px;font-weight:700'>{html.escape(self.title)}</div>"
            f"<div style='color:#555;font-size:12px'>{where}: <code>{html.escape(self.workspace)}</code> · {every} · checked {checked}</div>"
            f"<div data-state='{state}' style='background:{bg};padding:6px 10px;margin:6px 0;border-radius:4px;font-size:13px'>{icon} <b>{state.upper()}</b> — {html.escape(message)}</div>"
            f"<div style='font-size:13px'>{summary}</div>"
        )

    # -- widgets and the thread
    def widget(self):
        import ipywidgets as w

        if self._box is None:
            self._header_w = w.HTML(value=self.header)
            self._box = w.VBox(
                [self._header_w, *self.controls(), *[p.widget() for p in self.panels]], layout=w.Layout(width="100%")
            )
            self.update_controls()
        return self._box

    def controls(self) -> list:
        """Widgets under the header that act on the run (none by default)."""
        return []

    def update_controls(self) -> None:
        """Bring the controls up to date after a refresh (called from the refresh thread too:
        only widget values and layouts are set)."""

    def start(self) -> Dashboard:
        """Refresh every ``refresh_seconds`` on a background thread (at once if never refreshed)."""
        key = type(self).__name__
        old = Dashboard._running.get(key)
        if old is not None and old is not self:
            old.stop()  # re-running the cell replaces the old dashboard
        Dashboard._running[key] = self
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"cvagents-{key}", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        if self.refreshes and self._stop.wait(self.refresh_seconds):
            return
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self.refresh_seconds)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def show(self) -> Dashboard:
        """Display it: live widgets refreshed on a thread, or (``refresh_seconds == 0``) one
        static rendering as PNG/HTML outputs."""
        from IPython.display import HTML, Image, display

        if self.refresh_seconds <= 0:
            self.refresh()
            display(HTML(self.header))
            for p in self.panels:
                if p.kind == "figure":
                    display(HTML(p.title_html()))
                    display(Image(data=p.value, format="png"))
                    display(HTML(p.caption(p.updated)))
                else:
                    display(HTML(p.title_html() + (p.value or "") + p.caption(p.updated)))
            return self
        self.widget()
        self.refresh()  # the first rendering before display: every widget has its value when shown
        display(self._box)
        return self.start()

    def _repr_html_(self) -> str:  # a dashboard left as a cell's last value shows as text, not twice
        return f"<code>{html.escape(type(self).__name__)}({html.escape(self.workspace)!s})</code>"


def _fig(sig_parts: tuple, draw: Callable[[], Any]) -> Content:
    return Content(_signature(*sig_parts), figure=draw)


def _html(body: str) -> Content:
    return Content(_signature(body), html=body)


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
            "meetings": _html(table_html(p["meetings"], empty="no meeting yet")),
            "decisions": _html(decisions),
            "actions": _html(head + table_html(p["actions"], empty="no actions handed off yet")),
            "participation": _fig((p["participation"],), lambda: plots.participation_figure(p["participation"])),
            "tokens_fig": _fig(
                (p["tokens"], p["tokens_scope"]), lambda: plots.tokens_figure(p["tokens"], p["tokens_scope"])
            ),
            "tokens": _html(
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
        self._approve_w = None
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
        show = bool(self.awaiting) and not self.is_mirror
        if show:
            button.description = f"Approve {self.awaiting.get('version')} for {self.awaiting.get('stage')}"
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

        path = self.coordination_config or default_project_root() / "configs" / "autonomous_coordination.yaml"
        cfg = load_coordination_config(Path(path))
        rec = approval.approve(
            Workspace.from_config(Path(self.workspace), cfg),
            cfg,
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
            ("metrics", "NDCG@10, latency P95 and SLO compliance against the gates", "figure"),
            ("executions_fig", "Tool executions", "figure"),
            ("executions", "Latest tool executions", "html"),
            ("log", "executive.log (last lines)", "html"),
        ]

    def collect(self, src):
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
                f"Latest evaluation ({html.escape(str(m.get('stage')))}): NDCG@10 <b>{_fmt(m.get('ndcg_at_10'))}</b> [{_fmt(ci[0])}, {_fmt(ci[1])}] · "
                f"P95 <b>{_fmt(m.get('latency_p95_ms'))} ms</b> · SLO <b>{'—' if slo is None else f'{slo:.2%}'}</b>"
            )
        parts.append(
            f"Tool executions (last {e['heartbeats']} heartbeats): <b>{c['succeeded']}</b> succeeded, <b>{c['failed']}</b> failed, <b>{c['refused']}</b> refused"
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
            + _pre(e["deploy_log"])
        )
        execs = e["executions"].iloc[::-1]
        thr, md = e["thresholds"], e["metrics"]
        return summary, {
            "rollout": _html(rollout),
            "deployments": _html(deploy),
            "metrics": _fig((md, thr), lambda: plots.metrics_figure(md, thr)),
            "executions_fig": _fig((e["per_heartbeat"],), lambda: plots.executions_figure(e["per_heartbeat"])),
            "executions": _html(
                table_html(execs.drop(columns=["heartbeat"]), max_rows=15, empty="no tool executions yet")
            ),
            "log": _html(
                _pre(e["log_tail"])
                if e["log_tail"]
                else "<div style='color:#666;font-size:12px'>executive.log is not in this folder (a mirror holds reports/, runs/report/ and sessions/ only)</div>"
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
