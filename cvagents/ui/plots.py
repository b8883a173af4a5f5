"""The monitors' figures, drawn with matplotlib's object API (no pyplot, so any thread may draw),
and ``plot_workspace`` writing the same figures as PNG for people who read reports.

Each ``*_figure`` takes what ``cvagents.ui.dashboard_data`` returns and gives a ``Figure``; an
empty input gives a figure that says what is missing rather than an empty frame.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)  # a no-op in a notebook that already chose its backend
import matplotlib.dates as mdates  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter  # noqa: E402

from cvagents.config import STAGES  # noqa: E402
from cvagents.planning.participation import NOT_COUNTED  # noqa: E402
from cvagents.ui import dashboard_data as dd  # noqa: E402

SIZE = (7.5, 2.8)
DPI = 90
STATUS_COLORS = {"succeeded": "#2e7d32", "failed": "#c62828", "refused": "#ef6c00", "unverified": "#8e24aa"}
# a stage's colour by its place in the rollout: the first grey, the last green, those between
# blue, purple, teal, ...
FIRST_STAGE, LAST_STAGE, OTHER_STAGES = "#6d6d6d", "#2e7d32", ("#1565c0", "#6a1b9a", "#00838f", "#ef6c00", "#5d4037")
UNKNOWN_STAGE = "#37474f"


def stage_colors(stages: Sequence[str]) -> dict[str, str]:
    """Each stage's colour, by its place in the stage plan."""
    out = {s: OTHER_STAGES[(i - 1) % len(OTHER_STAGES)] for i, s in enumerate(stages)}
    if stages:
        out[stages[0]] = FIRST_STAGE
    if len(stages) > 1:
        out[stages[-1]] = LAST_STAGE
    return out


def _figure(title: str, size: tuple[float, float] = SIZE, left: float = 0.09) -> tuple[Figure, Any]:
    # fixed margins: a layout engine ("constrained", "tight") costs 2-3x the drawing itself
    fig = Figure(figsize=size, dpi=DPI)
    inch_h = size[1]
    fig.subplots_adjust(left=left, right=0.98, top=1 - 0.32 / inch_h, bottom=0.5 / inch_h)
    ax = fig.add_subplot()
    # a figure text, not an axes title: placing a title costs a layout pass over the tick labels
    fig.text(left, 1 - 0.08 / inch_h, title, fontsize=10, va="top", ha="left")
    ax.tick_params(labelsize=8)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _empty(ax, text: str, *, shared_x: bool = False) -> None:
    """Say what is missing in place of a chart. On an axes that shares its x axis with others
    the x ticks are left alone: clearing them would clear every shared axes' date ticks."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9, color="#555")
    if not shared_x:
        ax.set_xticks([])
    ax.set_yticks([])


SIM_TIME = "simulated time (the run's clock, UTC)"


def _time_axis(ax, times: pd.Series) -> None:
    times = times.dropna()
    if not len(times):
        return
    if times.min() == times.max():  # one point: give the axis a span to place ticks in
        t = times.min()
        ax.set_xlim(t - pd.Timedelta(minutes=30), t + pd.Timedelta(minutes=30))
    loc = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
    ax.set_xlabel(SIM_TIME, fontsize=8)


def _by_stage(ax, df: pd.DataFrame, col: str, stages: Sequence[str], events: pd.DataFrame | None = None) -> None:
    """One line per stage and version, in the stage's colour, labelled once per stage. A
    deployment, promotion or rollback into a stage (``events``) ends its line: no line joins a
    model's first stay in shadow to its return there after a rollback."""
    colors = stage_colors(stages)
    changes: dict[str, list] = {}
    if events is not None and len(events):
        for t, stage in zip(events["time"], events["stage"]):
            changes.setdefault(str(stage), []).append(t)
    df = df.assign(_stay=[sum(t > c for c in changes.get(str(st), ())) for t, st in zip(df["time"], df["stage"])])
    labelled: set[str] = set()
    band = col == "ndcg_at_10" and "ci_low" in df and df["ci_low"].notna().any()
    for (stage, _version, _stay), part in df.groupby(["stage", "version", "_stay"], sort=False, dropna=False):
        color = colors.get(str(stage), UNKNOWN_STAGE)
        if band:  # the 95% confidence band, per line
            ax.fill_between(
                part["time"],
                part["ci_low"],
                part["ci_high"],
                color=color,
                alpha=0.15,
                label=None if labelled else "95% CI",
            )
        ax.plot(
            part["time"],
            part[col],
            color=color,
            lw=1.2,
            marker="o",
            ms=4,
            label=None if str(stage) in labelled else str(stage),
            zorder=3,
        )
        labelled.add(str(stage))


EVENT_STYLE = {"promotion": ("#2e7d32", "-", "▲ promoted"), "rollback": ("#c62828", ":", "▼ rolled back")}


def _events(ax, events: pd.DataFrame | None, label: bool) -> None:
    """A vertical line at each promotion (solid green) and rollback (dotted red)."""
    if events is None or not len(events):
        return
    seen = set()
    for t, kind in zip(events["time"], events["kind"]):
        if t is None or pd.isna(t) or kind not in EVENT_STYLE:
            continue
        color, ls, text = EVENT_STYLE[kind]
        ax.axvline(
            t, color=color, ls=ls, lw=1.1, alpha=0.8, zorder=2, label=text if label and kind not in seen else None
        )
        seen.add(kind)


def _latency_scale(ax, values: pd.Series, threshold: float | None) -> None:
    """Latency spans sub-millisecond P95s to a gate of tens of ms: a log axis with ticks at
    1, 2, 5 × 10ⁿ labelled as plain numbers (0.2, 0.5, 1, …, 50) shows both."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    positive = values[values > 0]
    if len(positive):
        top = max(float(positive.max()), threshold or 0.0)
        ax.set_ylim(float(positive.min()) / 1.6, top * 1.6)


METRICS = (  # column, title, threshold key, gate label, y label
    ("ndcg_at_10", "NDCG@10 with its 95% confidence band", "ndcg_at_10_min", "gate ≥ {t} (CI lower bound)", "NDCG@10"),
    ("latency_p95_ms", "Latency P95 (ms, log scale)", "latency_p95_ms_max", "gate < {t} ms", "P95 ms"),
    ("slo_compliance", "SLO compliance", "slo_compliance_min", "gate ≥ {t}", "SLO compliance"),
)


def _metric_axes(
    ax,
    df: pd.DataFrame,
    col: str,
    threshold: float | None,
    gate_label: str,
    ylabel: str,
    stages: Sequence[str],
    legend: bool = True,
    events: pd.DataFrame | None = None,
    shared_x: bool = False,
) -> bool:
    """One metric over time on ``ax``: one line per stage, the CI band for NDCG, the gate line,
    promotions and rollbacks. False when there is nothing to draw."""
    data = df.dropna(subset=[col]) if len(df) else df
    if not len(data):
        _empty(ax, f"no {ylabel} measured yet", shared_x=shared_x)
        return False
    _by_stage(ax, data, col, stages, events)
    if col == "latency_p95_ms":
        _latency_scale(ax, data[col], threshold)
    _events(ax, _within(events, df), legend)
    if threshold is not None:
        ax.axhline(threshold, color="#c62828", ls="--", lw=1.2, label=gate_label)
    ax.set_ylabel(ylabel, fontsize=8)
    if not shared_x:
        _time_axis(ax, data["time"])
    if legend:
        ax.legend(fontsize=7, loc="lower left", ncols=3)
    return True


def _metric_figure(
    df: pd.DataFrame, which: int, thr: dict, stages: Sequence[str], events: pd.DataFrame | None
) -> Figure:
    col, title, key, gate, ylabel = METRICS[which]
    fig, ax = _figure(title, (7.5, 3.1))
    fig.subplots_adjust(bottom=0.75 / 3.1)
    _metric_axes(ax, df, col, thr.get(key), gate.format(t=thr.get(key)), ylabel, stages, events=events)
    return fig


def _within(events: pd.DataFrame | None, df: pd.DataFrame) -> pd.DataFrame | None:
    """The promotions and rollbacks since the first measurement shown (one long before it
    would squeeze the points into a corner; one after the last is news, and is kept)."""
    if events is None or not len(events) or not len(df) or df["time"].isna().all():
        return None
    return events[events["time"] >= df["time"].min()]


# ``stages``: the run's stage plan, in order (``execution_data(...)["stages"]``), for the colours;
# ``events``: promotions and rollbacks (``execution_data(...)["events"]``), marked on the charts


def ndcg_figure(
    df: pd.DataFrame, thr: dict, stages: Sequence[str] = STAGES, events: pd.DataFrame | None = None
) -> Figure:
    return _metric_figure(df, 0, thr, stages, events)


def latency_figure(
    df: pd.DataFrame, thr: dict, stages: Sequence[str] = STAGES, events: pd.DataFrame | None = None
) -> Figure:
    return _metric_figure(df, 1, thr, stages, events)


def slo_figure(
    df: pd.DataFrame, thr: dict, stages: Sequence[str] = STAGES, events: pd.DataFrame | None = None
) -> Figure:
    return _metric_figure(df, 2, thr, stages, events)


def metrics_figure(
    df: pd.DataFrame, thr: dict, stages: Sequence[str] = STAGES, events: pd.DataFrame | None = None
) -> Figure:
    """The three metrics one above the other on one (simulated) time axis (what the live
    dashboard shows: one figure costs about half of three). Any of them may have nothing yet
    (an evaluation before any traffic replay): that chart says so, the others still draw."""
    fig = Figure(figsize=(7.5, 6.9), dpi=DPI)
    fig.subplots_adjust(left=0.09, right=0.98, top=0.95, bottom=0.1, hspace=0.32)
    axes = fig.subplots(3, 1, sharex=True)
    for ax, (col, title, key, gate, ylabel) in zip(axes, METRICS):
        ax.tick_params(labelsize=8)
        ax.grid(True, alpha=0.3)
        ax.set_title(title, fontsize=9, loc="left", pad=3)
        drawn = _metric_axes(
            ax,
            df,
            col,
            thr.get(key),
            gate.format(t=thr.get(key)),
            ylabel,
            stages,
            legend=col == "ndcg_at_10",
            events=events,
            shared_x=True,
        )
        if drawn and col != "ndcg_at_10" and thr.get(key) is not None:  # the gate, named at its line
            below = key.endswith("_max")  # a ceiling: name it under the line, a floor above it
            ax.annotate(
                gate.format(t=thr[key]),
                (0.995, thr[key]),
                xycoords=("axes fraction", "data"),
                ha="right",
                va="top" if below else "bottom",
                xytext=(0, -2 if below else 2),
                textcoords="offset points",
                fontsize=7,
                color="#c62828",
            )
    if len(df) and df["time"].notna().any():
        _time_axis(axes[-1], df["time"])
    else:
        axes[-1].set_xticks([])
    return fig


def executions_figure(per_hb: pd.DataFrame) -> Figure:
    fig, ax = _figure(f"Tool executions per heartbeat (last {len(per_hb)})")
    if not len(per_hb) or not per_hb[list(dd.STATUSES)].to_numpy().sum():
        _empty(ax, "no tool executions yet")
        return fig
    x = list(range(len(per_hb)))  # numeric positions: a categorical axis costs a lot more to draw
    bottom = [0] * len(per_hb)
    for s in dd.STATUSES:
        ax.bar(x, per_hb[s], bottom=bottom, color=STATUS_COLORS[s], label=f"{s} ({int(per_hb[s].sum())})")
        bottom = [b + v for b, v in zip(bottom, per_hb[s])]
    step = max(1, len(x) // 12)
    ax.set_xticks(x[::step], [str(h) for h in per_hb["heartbeat"]][::step])
    ax.set_xlabel("heartbeat #", fontsize=8)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, max(bottom) * 1.45 + 0.5)  # room for the legend
    ax.legend(fontsize=7, loc="upper left", ncols=3)
    return fig


def tokens_figure(tokens: pd.DataFrame, scope: str = "") -> Figure:
    n = len(tokens)
    fig, ax = _figure(
        f"Tokens and cost per agent ({scope})" if scope else "Tokens and cost per agent",
        (7.5, max(2.2, 0.32 * n + 1.0)),
        left=0.22,
    )
    if not n:
        _empty(ax, "no agent has spoken yet")
        return fig
    df = tokens.iloc[::-1]
    ax.barh(df["agent"], df["input_tokens"], color="#90caf9", label="input")
    ax.barh(df["agent"], df["output_tokens"], left=df["input_tokens"], color="#1565c0", label="output")
    top = (df["input_tokens"] + df["output_tokens"]).max() or 1
    for y, (tot, cost) in enumerate(zip(df["input_tokens"] + df["output_tokens"], df["cost_usd"])):
        ax.text(tot + top * 0.01, y, f"{int(tot):,} tok  ${cost:.4f}", va="center", fontsize=7)
    ax.set_xlim(0, top * 1.3)
    ax.set_xlabel("tokens", fontsize=8)
    ax.legend(fontsize=7, loc="lower right")
    return fig


def participation_figure(part: pd.DataFrame) -> Figure:
    fig, ax = _figure(
        f"Agent participation (last {part.shape[1]} meetings)", (7.5, max(2.0, 0.3 * len(part) + 1.2)), left=0.22
    )
    if not part.size:
        _empty(ax, "no meeting yet")
        return fig
    code = part.map(
        lambda v: 1.0 if v == "✓" else (0.0 if v.startswith("absent") else (0.5 if v in NOT_COUNTED else float("nan")))
    )
    ax.pcolormesh(code.to_numpy(dtype=float), cmap="RdYlGn", vmin=-0.3, vmax=1.3, edgecolors="white", linewidth=2)
    for (i, j), v in pd.DataFrame(code.to_numpy()).stack().items():
        mark = "✓" if v == 1.0 else ("✗" if v == 0.0 else part.iat[i, j])
        ax.text(
            j + 0.5,
            i + 0.5,
            mark,
            ha="center",
            va="center",
            fontsize=8 if v != 0.5 else 6,
            color="white" if v != 0.5 else "black",
        )
    ax.set_ylim(len(part), 0)
    ax.set_yticks([i + 0.5 for i in range(len(part))], part.index, fontsize=7)
    ax.set_xticks(
        [j + 0.5 for j in range(part.shape[1])],
        [_short(c) for c in part.columns],
        fontsize=7,
        rotation=30 if part.shape[1] > 6 else 0,
    )
    ax.set_xlabel(
        "meeting, by its simulated time (green ✓ took part, yellow: echoed, empty or cut — not counted, red ✗ absent)",
        fontsize=8,
    )
    ax.grid(False)
    return fig


def _short(meeting_id: str) -> str:
    """``meeting_20251013_200000`` -> ``10-13 20:00``."""
    s = meeting_id.removeprefix("meeting_")
    return f"{s[4:6]}-{s[6:8]} {s[9:11]}:{s[11:13]}" if len(s) >= 13 else s


def png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, pil_kwargs={"compress_level": 3})
    return buf.getvalue()


def workspace_figures(src: dd.Source, planning: dict | None = None, execution: dict | None = None) -> dict[str, Figure]:
    """Every figure of both monitors, by file stem."""
    p = planning if planning is not None else dd.planning_data(src)
    e = execution if execution is not None else dd.execution_data(src)
    stages = e.get("stages") or src.stages
    return {  # one file per metric, for reports
        "ndcg_at_10": ndcg_figure(e["metrics"], e["thresholds"], stages, e.get("events")),
        "latency_p95": latency_figure(e["metrics"], e["thresholds"], stages, e.get("events")),
        "slo_compliance": slo_figure(e["metrics"], e["thresholds"], stages, e.get("events")),
        "tool_executions": executions_figure(e["per_heartbeat"]),
        "tokens_by_agent": tokens_figure(p["tokens"], p["tokens_scope"]),
        "participation": participation_figure(p["participation"]),
    }


def plot_workspace(workspace: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> list[Path]:
    """Write the monitors' figures as PNG (default ``<workspace>/reports/plots/``); returns the files."""
    src = dd.Source(workspace)
    out = (
        Path(out_dir)
        if out_dir is not None
        else Path(workspace) / src.ws.reports_dir.relative_to(src.ws.root) / "plots"
    )
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in workspace_figures(src).items():
        path = out / f"{name}.png"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(png(fig))
        os.replace(tmp, path)
        paths.append(path)
    return paths
