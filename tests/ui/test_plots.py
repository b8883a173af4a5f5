"""The monitors' figures: the run's points, the confidence band and the gate lines, and the PNG
files that ``plot_workspace`` (``cvagents plot``) writes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

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
    points = sorted(float(y) for c in ax.collections if not isinstance(c, PolyCollection) for _, y in c.get_offsets())
    assert points == sorted(r["ndcg_at_10"] for r in evals)
    band = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert band, "no confidence band"
    ys = np.concatenate([p.vertices[:, 1] for p in band[0].get_paths()])
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
        "Latency P95 (ms)",
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
