"""The pieces a dashboard is made of: small escaped HTML tables and text blocks, and ``Panel``
(a titled figure or HTML block that is redrawn only when its data changed)."""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd  # imported where used: the monitors' import stays light


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
    "unverified": "#8e24aa",
    "inconclusive": "#ef6c00",
    "hold": "#ef6c00",
    "pending": "#616161",
    "champion": "#2e7d32",
    "waiting": "#616161",
    "retired": "#616161",
}
#: a cell starting with one of these is coloured as failed (an absent agent, a rejected model)
FAILED_PREFIXES = ("absent", "rejected")
TABLE_STYLE = "border-collapse:collapse;font-size:12px;margin:2px 0 8px 0"
CELL_STYLE = "border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top;line-height:1.35"


def fmt(v: Any) -> str:
    import pandas as pd

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
            text = html.escape(fmt(v))
            color = STATUS_COLORS.get(str(v)) or (
                STATUS_COLORS["failed"] if str(v).startswith(FAILED_PREFIXES) else None
            )
            style = (
                CELL_STYLE
                + (";white-space:nowrap" if len(text) <= 24 else "")
                + (f";color:{color};font-weight:600" if color else "")
            )
            tds.append(f"<td style='{style}'>{text}</td>")
        out.append("<tr>" + "".join(tds) + "</tr>")
    return "".join(out) + "</table>"


def pre(lines: list[str]) -> str:
    if not lines:
        return "<div style='color:#666;font-size:12px'>nothing yet</div>"
    return (
        "<pre style='font-size:11px;line-height:1.3;white-space:pre-wrap;margin:0'>"
        + html.escape("\n".join(lines))
        + "</pre>"
    )


def signature(*parts: Any) -> str:
    import pandas as pd

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
        self.error: str | None = None  # why the last redraw failed
        self._w: dict[str, Any] | None = None

    def update(self, content: Content, checked: str) -> bool:
        """Redraw if the data changed; True if it did. A figure that fails to draw leaves the
        panel saying why (``error``) instead of raising: the other panels still draw."""
        from cvagents.ui import plots

        changed = content.signature != self.signature
        if changed:
            try:
                if self.kind == "figure":
                    assert content.figure is not None, f"panel {self.key}: a figure panel needs a figure"
                    self.value = plots.png(content.figure())
                else:
                    self.value = content.html
                self.error = None
            except Exception as e:  # noqa: BLE001 -- shown in the panel and the banner
                self.error = f"{type(e).__name__}: {e}"
                self.value = b"" if self.kind == "figure" else ""
            self.signature, self.updated = content.signature, checked
        if self._w is not None:
            if changed:
                self._w["body"].value = self.value
                self._w["body"].layout.display = "none" if self.error else ""
            self._w["caption"].value = self.caption(checked)
        return changed

    def caption(self, checked: str | None) -> str:
        same = "" if self.updated == checked else f" (unchanged at {checked})"
        failed = (
            f"<div style='color:#c62828;font-size:12px'>❗ could not draw this panel: {html.escape(self.error)}</div>"
            if self.error
            else ""
        )
        return f"{failed}<div style='color:#777;font-size:11px;margin-bottom:10px'>updated {self.updated}{same} (wall clock)</div>"

    def title_html(self) -> str:
        return f"<div style='font-weight:600;font-size:14px;margin-top:8px'>{html.escape(self.title)}</div>"

    def widget(self) -> Any:
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


def figure(sig_parts: tuple, draw: Callable[[], Any]) -> Content:
    return Content(signature(*sig_parts), figure=draw)


def html_block(body: str) -> Content:
    return Content(signature(body), html=body)
