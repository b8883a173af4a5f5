"""``cvagents status`` and the execution dashboard show the champion in production and every
candidate with what became of it (waiting, in rollout at a stage, rejected and why, retired),
read through ``Workspace.open`` like the rest of the monitors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from toy_models import SPEC, write_collection, write_toy

from cvagents.config import CoordinationConfig
from cvagents.rollout import decisions, deployment
from cvagents.rollout.submission import submit_candidate
from cvagents.ui import dashboard_data as dd
from cvagents.ui.dashboard import ExecutionDashboard
from cvagents.ui.status import collect_status, format_status
from cvagents.workspace import Workspace


@pytest.fixture
def lifecycle_ws(tmp_path) -> tuple[Workspace, dict[str, str]]:
    """e served production and was replaced by a (the champion); b is live in shadow; c failed a
    gate; d waits."""
    cfg = CoordinationConfig()
    ws = Workspace.from_config(tmp_path / "ws", cfg).create()
    write_collection(ws.validation_dir)
    shas = {}
    for i, (name, quality) in enumerate(
        [("e", "oracle"), ("a", "good"), ("b", "reversed"), ("c", "random"), ("d", "oracle")]
    ):
        path = write_toy(ws.research_dir / f"{name}.json", quality=quality, delay_ms=i)  # five distinct files
        shas[name] = submit_candidate(ws, cfg, str(path), adapter=SPEC, by="alice", now=f"2025-03-01T08:0{i}:00")[
            "sha256"
        ]
    prod = ws.stage_dir("production")
    for n, name in enumerate(["e", "a"]):
        deployment.install(prod, ws.research_dir / f"{name}.json", source_label=name, action_id=f"p#{n}", time="t")
    deployment.install(ws.stage_dir("shadow"), ws.research_dir / "b.json", source_label="b", action_id="s#1", time="t")
    decisions.append(
        ws,
        cfg,
        "rollback",
        stage="shadow",
        outcome="rolled_back",
        reason="ndcg_at_10 0.41 < 0.72",
        time="t",
        sha256=shas["c"],
        cause="gate",
    )
    return ws, shas


def test_status_shows_the_champion_and_each_candidates_status(lifecycle_ws):
    ws, shas = lifecycle_ws
    s = collect_status(ws.root)
    champ = s["models"]["champion"]
    assert champ["name"] == "a" and champ["sha256"] == shas["a"]
    assert champ["version"] == deployment.live(ws.stage_dir("production"))["version"]
    described = {c["name"]: c["describe"] for c in s["models"]["candidates"]}
    assert described == {
        "e": "retired",
        "a": "champion",
        "b": "in_rollout at shadow",
        "c": "rejected: ndcg_at_10 0.41 < 0.72 at shadow",
        "d": "waiting",
    }
    c = next(c for c in s["models"]["candidates"] if c["name"] == "c")
    assert c["adapter"] == SPEC and c["source"]["kind"] == "file" and c["submitted_by"] == "alice"
    text = format_status(s)
    assert f"🏆 Champion: a {champ['version']} (sha256 {shas['a'][:12]})" in text
    for name, what in described.items():
        if name != "a":
            assert f"candidate {name} (sha256 {shas[name][:12]}): {what}" in text
    json.dumps(s)  # --json


def test_status_of_a_workspace_without_models_says_so(tmp_path):
    s = collect_status(tmp_path / "nothing")
    assert s["models"] == {"champion": None, "candidates": []}
    assert "🏆 Champion: none in production yet" in format_status(s)


def test_the_cli_status_json_carries_the_models(lifecycle_ws):
    p = subprocess.run(
        [sys.executable, "-m", "cvagents", "status", "--workspace", str(lifecycle_ws[0].root), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    m = json.loads(p.stdout)["models"]
    assert m["champion"]["name"] == "a"
    assert [(c["name"], c["status"]) for c in m["candidates"]] == [
        ("e", "retired"),
        ("a", "champion"),
        ("b", "in_rollout"),
        ("c", "rejected"),
        ("d", "waiting"),
    ]


def test_the_execution_dashboard_has_a_models_panel(lifecycle_ws):
    ws, shas = lifecycle_ws
    m = dd.models_data(dd.Source(ws.root))
    assert m["champion"]["name"] == "a"
    assert list(m["candidates"]["candidate"]) == ["e", "a", "b", "c", "d"]
    assert list(m["candidates"]["status"])[2:] == [
        "in_rollout at shadow",
        "rejected: ndcg_at_10 0.41 < 0.72 at shadow",
        "waiting",
    ]
    d = ExecutionDashboard(ws.root, refresh_seconds=0)
    d.widget()
    assert d.refresh()["error"] is None
    panel = next(p for p in d.panels if p.key == "models")
    html = panel._w["body"].value
    assert "Champion in production: <b>a</b>" in html and shas["a"][:12] in html
    assert "rejected: ndcg_at_10 0.41 &lt; 0.72 at shadow" in html and "in_rollout at shadow" in html
    assert "color:#c62828" in html  # the rejected one stands out


def test_an_empty_workspace_shows_no_champion_and_no_candidate(tmp_path):
    m = dd.models_data(dd.Source(tmp_path / "nothing"))
    assert m["champion"] is None and len(m["candidates"]) == 0
