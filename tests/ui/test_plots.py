"""The monitors' figures: the run's points, the confidence band and the gate lines, and the PNG
files that ``plot_workspace`` (``cvagents plot``) writes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection

from cvagents.ui import dashboard_data as dd
from cvagents.ui import plots

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data(run_ws):
    src = dd.Source(run_ws)
    return dd.planning_data(src), dd.execution_data(src)


def _hlines(ax) -> set[float]:
    return {
        float(ln.get_ydata()[0]) for ln in ax.get_lines() if len(set(ln.get_ydata())) == 1 and len(ln.get_ydata()) == 2
    }


def _stage_lines(ax) -> list:
    """The lines of measurements (one per stage and version), not the gate or event lines."""
    return [ln for ln in ax.get_lines() if ln.get_marker() == "o"]


def test_plot_workspace_writes_every_figure_under_reports_plots(run_ws, tmp_path):
    ws = tmp_path / "ws"
    for sub in ("reports", "runs/report", "sessions"):
        shutil.copytree(run_ws / sub, ws / sub)
    paths = plots.plot_workspace(ws)
    assert [p.name for p in paths] == [
        "ndcg_at_10.png",
        "latency_p95.png",
        "slo_compliance.png",
        "tool_executions.png",
        "tokens_by_agent.png",
        "participation.png",
    ]
    for p in paths:
        assert p.parent == ws / "reports" / "plots" and p.read_bytes().startswith(PNG) and p.stat().st_size > 5000
    other = plots.plot_workspace(ws, tmp_path / "elsewhere")
    assert all(p.parent == tmp_path / "elsewhere" for p in other)


def test_cvagents_plot_command_prints_the_files_it_wrote(run_ws, tmp_path, capsys):
    from cvagents.cli import main

    assert main(["plot", "--workspace", str(run_ws), "--out", str(tmp_path / "png")]) == 0
    printed = capsys.readouterr().out.split()
    assert [Path(p).name for p in printed][:3] == ["ndcg_at_10.png", "latency_p95.png", "slo_compliance.png"]
    assert all(Path(p).read_bytes().startswith(PNG) for p in printed)


def test_ndcg_figure_has_the_runs_points_the_band_and_the_gate(run_ws, data):
    _, e = data
    fig = plots.ndcg_figure(e["metrics"], e["thresholds"])
    ax = fig.axes[0]
    evals = [
        r
        for r in json.loads((run_ws / "runs/report/metrics.json").read_text())["history"]
        if r.get("kind", "evaluation") != "traffic" and r.get("ndcg_at_10") is not None
    ]
    points = sorted(float(y) for ln in _stage_lines(ax) for y in ln.get_ydata())
    assert points == sorted(r["ndcg_at_10"] for r in evals)
    band = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert band, "no confidence band"
    ys = np.concatenate([p.vertices[:, 1] for b in band for p in b.get_paths()])
    assert ys.min() == pytest.approx(min(r["ndcg_at_10_ci95"][0] for r in evals))
    assert 0.72 in _hlines(ax)


def test_latency_and_slo_figures_draw_their_gates(data):
    _, e = data
    assert 50.0 in _hlines(plots.latency_figure(e["metrics"], e["thresholds"]).axes[0])
    assert 0.99 in _hlines(plots.slo_figure(e["metrics"], e["thresholds"]).axes[0])


def test_the_dashboards_metrics_figure_has_all_three_with_their_gates(data):
    _, e = data
    fig = plots.metrics_figure(e["metrics"], e["thresholds"])
    ndcg, latency, slo = fig.axes
    assert [a.get_title(loc="left") for a in fig.axes] == [
        "NDCG@10 with its 95% confidence band",
        "Latency P95 (ms, log scale)",
        "SLO compliance",
    ]
    assert 0.72 in _hlines(ndcg) and 50.0 in _hlines(latency) and 0.99 in _hlines(slo)
    assert any(isinstance(c, PolyCollection) for c in ndcg.collections)
    assert plots.png(fig).startswith(PNG)


def test_thresholds_follow_the_gates_the_run_applied():
    state = {
        "current": {
            "gates": [
                {"gate": "ndcg_at_10", "threshold": ">= 0.8 (lower bound of the 95% CI)"},
                {"gate": "latency_p95_ms", "threshold": "< 30.0"},
            ]
        }
    }
    t = dd.thresholds(state)
    assert t["ndcg_at_10_min"] == 0.8 and t["latency_p95_ms_max"] == 30.0 and t["slo_compliance_min"] == 0.99


def test_executions_figure_stacks_every_status(data):
    _, e = data
    ax = plots.executions_figure(e["per_heartbeat"]).axes[0]
    heights = sum(p.get_height() for p in ax.patches)
    assert heights == sum(e["counts"].values()) > 0


def test_tokens_and_participation_figures(data):
    p, _ = data
    ax = plots.tokens_figure(p["tokens"], p["tokens_scope"]).axes[0]
    assert {t.get_text() for t in ax.get_yticklabels()} == set(p["tokens"]["agent"])
    ax = plots.participation_figure(p["participation"]).axes[0]
    assert {t.get_text() for t in ax.get_yticklabels()} == set(p["participation"].index)


def test_empty_data_gives_a_figure_that_says_so():
    empty = dd.metrics_history(None)
    for fig, word in [
        (plots.ndcg_figure(empty, dd.thresholds(None)), "no NDCG@10"),
        (plots.executions_figure(dd.per_heartbeat([])), "no tool executions"),
        (
            plots.tokens_figure(
                pd.DataFrame(columns=["agent", "input_tokens", "output_tokens", "cached_tokens", "cost_usd"])
            ),
            "no agent",
        ),
        (plots.participation_figure(dd.participation([])), "no meeting"),
    ]:
        assert any(word in t.get_text() for t in fig.axes[0].texts)
        assert plots.png(fig).startswith(PNG)


THR = {"ndcg_at_10_min": 0.72, "latency_p95_ms_max": 50.0, "slo_compliance_min": 0.99}


def _rec(t: str, kind: str, stage: str, version: str = "v1", **m) -> dict:
    return {"time": f"2026-01-01T{t}:00+00:00", "kind": kind, "stage": stage, "version": version, **m}


def _eval(t: str, stage: str, version: str = "v1", ndcg: float = 0.9, p95: float = 0.42) -> dict:
    return _rec(
        t, "evaluation", stage, version, ndcg_at_10=ndcg, ndcg_at_10_ci95=[ndcg - 0.01, ndcg + 0.01], latency_p95_ms=p95
    )


def _traffic(t: str, stage: str, version: str = "v1") -> dict:
    return _rec(t, "traffic", stage, version, slo_compliance=1.0, p0_incidents=0)


def _events(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"time": pd.Timestamp(f"2026-01-01T{t}:00"), "kind": k, "stage": s} for t, k, s in rows],
        columns=["time", "kind", "stage"],
    )


def _hhmm(x) -> str:
    return (x if isinstance(x, pd.Timestamp) else pd.Timestamp(mdates.num2date(x))).strftime("%H:%M")


def test_an_evaluation_without_any_traffic_replay_draws_and_says_what_is_missing():
    """The state right after the first evaluation (or after a failed replay): NDCG and latency
    have a point, SLO compliance nothing. The shared time axis used to raise IndexError."""
    df = dd.metrics_history({"history": [_eval("10:00", "shadow")]})
    fig = plots.metrics_figure(df, THR, events=_events(("09:55", "deployment", "shadow")))
    assert plots.png(fig).startswith(PNG)
    ndcg, latency, slo = fig.axes
    assert [float(y) for ln in _stage_lines(ndcg) for y in ln.get_ydata()] == [0.9]
    assert any("no SLO compliance measured yet" in t.get_text() for t in slo.texts)
    assert [t.get_text() for t in slo.get_xticklabels() if t.get_text()], "the shared time axis lost its ticks"
    only_traffic = dd.metrics_history({"history": [_traffic("10:00", "shadow")]})
    assert plots.png(plots.metrics_figure(only_traffic, THR)).startswith(PNG)
    assert plots.png(plots.metrics_figure(dd.metrics_history(None), THR)).startswith(PNG)


def test_one_line_per_stage_and_version_marked_by_promotions_and_rollbacks():
    history = [
        _eval("10:00", "shadow"),
        _eval("10:30", "shadow"),
        _eval("11:00", "5_percent"),
        _eval("11:30", "5_percent"),
        _eval("12:00", "shadow", "v2", ndcg=0.5),  # a new candidate in shadow, rolled back
        _eval("12:40", "shadow"),  # the old one back in shadow: a new line
        _eval("13:00", "5_percent"),  # 5_percent kept v1 all along: the same line
    ]
    events = _events(
        ("09:50", "deployment", "shadow"),
        ("10:45", "promotion", "5_percent"),
        ("11:50", "deployment", "shadow"),
        ("12:20", "rollback", "shadow"),
    )
    fig = plots.ndcg_figure(dd.metrics_history({"history": history}), THR, events=events)
    ax = fig.axes[0]
    lines = sorted(sorted(float(y) for y in ln.get_ydata()) for ln in _stage_lines(ax))
    assert lines == [[0.5], [0.9], [0.9, 0.9], [0.9, 0.9, 0.9]]  # v2 alone; shadow back; shadow first; 5_percent
    colors = plots.stage_colors(plots.STAGES)
    by_color = {ln.get_color(): len(ln.get_ydata()) for ln in _stage_lines(ax)}
    assert by_color[colors["5_percent"]] == 3
    vertical = {
        (_hhmm(ln.get_xdata()[0]), ln.get_color())
        for ln in ax.get_lines()
        if len(set(ln.get_xdata())) == 1 and ln.get_marker() != "o"
    }
    assert vertical == {("10:45", plots.EVENT_STYLE["promotion"][0]), ("12:20", plots.EVENT_STYLE["rollback"][0])}
    legend = {t.get_text() for t in ax.get_legend().get_texts()}
    assert {"shadow", "5_percent", "▲ promoted", "▼ rolled back"} <= legend


def test_the_latency_axis_shows_sub_millisecond_values_beside_the_gate():
    df = dd.metrics_history({"history": [_eval("10:00", "shadow", p95=0.38), _eval("10:30", "shadow", p95=0.45)]})
    for fig in (plots.latency_figure(df, THR), plots.metrics_figure(df, THR)):
        ax = next(
            a
            for a in fig.axes
            if "Latency" in a.get_title(loc="left") or "Latency" in "".join(t.get_text() for t in fig.texts)
        )
        fig.canvas.draw()
        lo, hi = ax.get_ylim()
        assert lo < 0.38 and hi > 50.0  # the points and the gate
        labels = [float(t.get_text()) for t in ax.get_yticklabels() if t.get_text() and lo <= t.get_position()[1] <= hi]
        assert any(v < 1 for v in labels) and 50.0 in labels, labels


def test_time_axes_say_they_are_the_runs_simulated_clock():
    df = dd.metrics_history({"history": [_eval("10:00", "shadow"), _traffic("10:20", "shadow")]})
    assert "simulated" in plots.metrics_figure(df, THR).axes[-1].get_xlabel()
    assert "simulated" in plots.ndcg_figure(df, THR).axes[0].get_xlabel()
    part = dd.participation([{"meeting_id": "meeting_20260101_100000", "participants": ["a"]}])
    assert "simulated" in plots.participation_figure(part).axes[0].get_xlabel()
