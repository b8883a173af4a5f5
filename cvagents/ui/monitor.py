"""A live dashboard over one workspace: panels, a header with the folder's health, and a
background thread that refreshes it (``Dashboard``; the monitors in ``cvagents.ui.dashboard``
say which panels and how to fill them).

With ``refresh_seconds > 0`` it refreshes on a background thread that sets widget values (never
``with out:`` from a thread), so the kernel stays free; a figure is redrawn only when its data
changed, and each panel says when it was last updated. With ``refresh_seconds=0`` it renders
once as plain outputs (PNG and HTML, which stay in a saved notebook) and returns: that is how
papermill and tests run it.
"""

from __future__ import annotations

import html
import threading
import traceback
from datetime import datetime
from typing import Any, Self

from cvagents.clock import stopwatch
from cvagents.ui import dashboard_data as dd
from cvagents.ui.panels import Content, Panel

BANNER = {  # state -> (icon, background)
    "empty": ("⚪", "#fff8e1"),
    "partial": ("🟠", "#fff3e0"),
    "stale": ("🔴", "#ffebee"),
    "live": ("🟢", "#e8f5e9"),
    "finished": ("🔵", "#e3f2fd"),
    "stopped": ("🔵", "#e3f2fd"),
    "error": ("❗", "#ffebee"),
}


def _clock() -> str:
    return datetime.now().astimezone().strftime("%H:%M:%S %Z")


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
        self._workspace_w = None

    # -- what subclasses provide
    def panel_specs(self) -> list[tuple[str, str, str]]:
        raise NotImplementedError

    def collect(self, src: dd.Source) -> tuple[str, dict[str, Content]]:
        """Read the workspace: (summary HTML for the header, content per panel key)."""
        raise NotImplementedError

    # -- refreshing
    def refresh(self) -> dict[str, Any]:
        """Read the workspace and update every panel; returns what it did (for tests and benchmarks).

        Never raises: a failure to read the folder turns the banner into an error that says what
        broke (the panels keep what they showed), and a panel that fails to draw shows its error
        in its place while the others are drawn."""
        with self._lock:
            sw = stopwatch()
            checked = _clock()
            redrawn: list[str] = []
            try:
                src = dd.Source(self.workspace)
                summary, contents = self.collect(src)
                h = dd.health(src, refresh_seconds=self.refresh_seconds or 30, stale_after_s=self.stale_after_s)
                failed = []
                for p in self.panels:
                    if p.update(contents[p.key], checked):
                        redrawn.append(p.key)
                    if p.error:
                        failed.append(f"{p.title}: {p.error}")
                self.health = h
                self.error = "; ".join(failed) if failed else None
                self.header = self._header(h, summary, checked)
            except Exception as e:  # a refresh never kills the loop; the banner says what broke
                self.error = f"{type(e).__name__}: {e}"
                self.health = None
                self.header = self._header(
                    None, f"<pre style='font-size:11px'>{html.escape(traceback.format_exc(limit=4))}</pre>", checked
                )
            if self._header_w is not None:
                self._header_w.value = self.header
                self.update_controls()
            self.last_refresh_s = sw.elapsed()
            self.refreshes += 1
            return {"seconds": self.last_refresh_s, "redrawn": redrawn, "error": self.error}

    def _header(self, h: dd.Health | None, summary: str, checked: str) -> str:
        if h is None:
            state, message = "error", f"Refresh failed: {self.error}"
        elif self.error:  # the folder was read, a panel could not be drawn
            state, message = "error", f"{h.message} A panel failed — {self.error}"
        else:
            state, message = h.state, h.message
        icon, bg = BANNER[state]
        where = "mirror" if h is not None and h.is_mirror else "workspace"
        every = f"refreshes every {self.refresh_seconds:g} s" if self.refresh_seconds > 0 else "rendered once"
        return (
            f"<div style='font-size:18px;font-weight:700'>{html.escape(self.title)}</div>"
            f"<div style='color:#555;font-size:12px'>{where}: <code>{html.escape(self.workspace)}</code> · {every} · checked {checked} (wall clock)</div>"
            f"<div data-state='{state}' style='background:{bg};padding:6px 10px;margin:6px 0;border-radius:4px;font-size:13px'>{icon} <b>{state.upper()}</b> — {html.escape(message)}</div>"
            f"<div style='font-size:13px'>{summary}</div>"
        )

    def choose(self, workspace: str) -> None:
        """Point the dashboard at another workspace or mirror folder (the workspace box does
        this) and refresh at once."""
        self.workspace = str(workspace)
        for p in self.panels:
            p.signature = None  # everything is redrawn from the new folder
        self.refresh()

    # -- widgets and the thread
    def widget(self):
        import ipywidgets as w

        if self._box is None:
            self._header_w = w.HTML(value=self.header)
            box = w.Text(
                value=self.workspace,
                description="workspace",
                placeholder="the run's workspace or its mirror folder",
                continuous_update=False,  # the value changes on Enter or leaving the box
                layout=w.Layout(width="90%"),
            )
            box.observe(lambda change: self.choose(change["new"]) if change["new"] else None, names="value")
            self._workspace_w = box
            self._box = w.VBox(
                [self._header_w, box, *self.controls(), *[p.widget() for p in self.panels]],
                layout=w.Layout(width="100%"),
            )
            self.update_controls()
        return self._box

    def controls(self) -> list:
        """Widgets under the header that act on the run (none by default)."""
        return []

    def update_controls(self) -> None:
        """Bring the controls up to date after a refresh (called from the refresh thread too:
        only widget values and layouts are set)."""

    def start(self) -> Self:
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

    def show(self) -> Self:
        """Display it: live widgets refreshed on a thread, or (``refresh_seconds == 0``) one
        static rendering as PNG/HTML outputs."""
        from IPython.display import HTML, Image, display

        if self.refresh_seconds <= 0:
            self.refresh()
            display(HTML(self.header))
            for p in self.panels:  # a panel that failed (or was never drawn) says so in its place
                if p.kind == "figure" and isinstance(p.value, bytes) and p.value:
                    display(HTML(p.title_html()))
                    display(Image(data=p.value, format="png"))
                    display(HTML(p.caption(p.updated)))
                else:
                    body = "" if p.kind == "figure" else str(p.value or "")
                    display(HTML(p.title_html() + body + p.caption(p.updated)))
            return self
        self.widget()
        self.refresh()  # the first rendering before display: every widget has its value when shown
        display(self._box)
        return self.start()

    def _repr_html_(self) -> str:  # a dashboard left as a cell's last value shows as text, not twice
        return f"<code>{html.escape(type(self).__name__)}({html.escape(self.workspace)!s})</code>"
