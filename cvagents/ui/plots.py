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
from matplotlib.ticker import MaxNLocator  # noqa: E402

from cvagents.config import STAGES  # noqa: E402
from cvagents.ui import dashboard_data as dd  # noqa: E402

SIZE = (7.5, 2.8)
DPI = 90
STATUS_COLORS = {"succeeded": "#2e7d32", "failed": "#c62828", "refused": "#ef6c00"}
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


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9, color="#555")
    ax.set_xticks([])
    ax.set_yticks([])


def _time_axis(ax, times: pd.Series) -> None:
    if times.min() == times.max():  # one point: give the axis a span to place ticks in
        t = times.min()
        ax.set_xlim(t - pd.Timedelta(minutes=30), t + pd.Timedelta(minutes=30))
    loc = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))


def _by_stage(ax, df: pd.DataFrame, col: str, stages: Sequence[str]) -> None:
    """One line through every point in time order, markers coloured by stage."""
    ax.plot(df["time"], df[col], color="#90a4ae", lw=1, zorder=1)
    colors = stage_colors(stages)
    for stage, part in df.groupby("stage", sort=False):
        ax.scatter(part["time"], part[col], s=18, color=colors.get(str(stage), UNKNOWN_STAGE), label=stage, zorder=3)


METRICS = (  # column, title, threshold key, gate label, y label
    ("ndcg_at_10", "NDCG@10 with its 95% confidence band", "ndcg_at_10_min", "gate ≥ {t} (CI lower bound)", "NDCG@10"),
    ("latency_p95_ms", "Latency P95 (ms)", "latency_p95_ms_max", "gate < {t} ms", "P95 ms"),
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
) -> bool:
    """One metric over time on ``ax``: points coloured by stage, the CI band for NDCG, the gate
    line. False when there is nothing to draw."""
    data = df.dropna(subset=[col]) if len(df) else df
    if not len(data):
        _empty(ax, f"no {ylabel} measured yet")
        return False
    if col == "ndcg_at_10" and data["ci_low"].notna().any():
        ax.fill_between(data["time"], data["ci_low"], data["ci_high"], color="#1565c0", alpha=0.15, label="95% CI")
    _by_stage(ax, data, col, stages)
    if threshold is not None:
        ax.axhline(threshold, color="#c62828", ls="--", lw=1.2, label=gate_label)
    ax.set_ylabel(ylabel, fontsize=8)
    _time_axis(ax, data["time"])
    if legend:
        ax.legend(fontsize=7, loc="best", ncols=2)
    return True


def _metric_figure(df: pd.DataFrame, which: int, thr: dict, stages: Sequence[str]) -> Figure:
    col, title, key, gate, ylabel = METRICS[which]
    fig, ax = _figure(title)
    _metric_axes(ax, df, col, thr.get(key), gate.format(t=thr.get(key)), ylabel, stages)
    return fig


# ``stages``: the run's stage plan, in order (``execution_data(...)["stages"]``), for the colours


def ndcg_figure(df: pd.DataFrame, thr: dict, stages: Sequence[str] = STAGES) -> Figure:
    return _metric_figure(df, 0, thr, stages)


def latency_figure(df: pd.DataFrame, thr: dict, stages: Sequence[str] = STAGES) -> Figure:
    return _metric_figure(df, 1, thr, stages)


def slo_figure(df: pd.DataFrame, thr: dict, stages: Sequence[str] = STAGES) -> Figure:
    return _metric_figure(df, 2, thr, stages)


def metrics_figure(df: pd.DataFrame, thr: dict, stages: Sequence[str] = STAGES) -> Figure:
    """The three metrics one above the other on one time axis (what the live dashboard shows:
    one figure costs about half of three)."""
    fig = Figure(figsize=(7.5, 6.6), dpi=DPI)
    fig.subplots_adjust(left=0.09, right=0.98, top=0.95, bottom=0.07, hspace=0.32)
    axes = fig.subplots(3, 1, sharex=True)
    for ax, (col, title, key, gate, ylabel) in zip(axes, METRICS):
        ax.tick_params(labelsize=8)
        ax.grid(True, alpha=0.3)
        ax.set_title(title, fontsize=9, loc="left", pad=3)
        _metric_axes(ax, df, col, thr.get(key), gate.format(t=thr.get(key)), ylabel, stages, legend=col == "ndcg_at_10")
        if col != "ndcg_at_10" and thr.get(key) is not None and ax.lines:  # the gate, named at its line
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
    code = part.map(lambda v: 1.0 if v == "✓" else (0.0 if v.startswith("absent") else float("nan")))
    ax.pcolormesh(code.to_numpy(dtype=float), cmap="RdYlGn", vmin=-0.3, vmax=1.3, edgecolors="white", linewidth=2)
    for (i, j), v in pd.DataFrame(code.to_numpy()).stack().items():
        ax.text(j + 0.5, i + 0.5, "✓" if v == 1.0 else "✗", ha="center", va="center", fontsize=8, color="white")
    ax.set_ylim(len(part), 0)
    ax.set_yticks([i + 0.5 for i in range(len(part))], part.index, fontsize=7)
    ax.set_xticks(
        [j + 0.5 for j in range(part.shape[1])],
        [_short(c) for c in part.columns],
        fontsize=7,
        rotation=30 if part.shape[1] > 6 else 0,
    )
    ax.set_xlabel("meeting (green ✓ spoke, red ✗ absent)", fontsize=8)
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
        "ndcg_at_10": ndcg_figure(e["metrics"], e["thresholds"], stages),
        "latency_p95": latency_figure(e["metrics"], e["thresholds"], stages),
        "slo_compliance": slo_figure(e["metrics"], e["thresholds"], stages),
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
