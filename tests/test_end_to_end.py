"""The whole loop on the offline provider, through the real CLI, in a temporary workspace."""

import json
import re
import subprocess
import sys

import pytest

from cvagents.config import EXECUTIVE_ROLES


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    ws = tmp_path_factory.mktemp("e2e") / "ws"
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "cvagents",
            "run",
            "--provider",
            "offline",
            "--meetings",
            "3",
            "--time-scale",
            "600",
            "--workspace",
            str(ws),
            "--json",
        ],  # as `make demo`, with the result as JSON: the accelerated clock runs fast only while it
        # waits, so what fits in a phase does not depend on machine load
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return ws, p


def test_run_reports_three_meetings(demo):
    ws, p = demo
    result = json.loads(p.stdout)  # the result alone on stdout
    assert result["status"] == "finished" and result["meetings"] == 3 and result["heartbeats"] >= 3
    assert "Meeting complete" in p.stderr and "[TOOL]" in p.stderr  # progress is visible while it runs


def test_planning_outputs(demo):
    ws, _ = demo
    plan = ws / "reports" / "planning"
    transcripts = sorted(plan.glob("transcript_meeting_*.md"))
    summaries = sorted(plan.glob("summary_meeting_*.md"))
    actions = sorted(plan.glob("actions_meeting_*.json"))
    assert len(transcripts) == len(summaries) == len(actions) == 3
    t = transcripts[0].read_text()
    for who in ("Moderator — agenda", "Data Analyst", "Critic", "Pre Architect", "Tech Analysis", "Cotrr Team"):
        assert who in t
    assert "offline provider" in t
    s = summaries[-1].read_text()
    assert "Go/no-go" in s and "Agents participated: 6" in s and "| **total** |" in s
    a = json.loads(actions[0].read_text())
    assert a["count"] == len(a["actions"]) and 1 <= a["count"] <= 20
    assert a["actions"][0]["action"].startswith("Create the V1 model artifacts")


def test_handoff_is_valid_and_in_the_guides_format(demo):
    ws, _ = demo
    h = json.loads((ws / "reports" / "handoff" / "pending_actions.json").read_text())
    assert list(h) == ["timestamp", "meeting_id", "actions", "count", "source"]
    assert re.fullmatch(r"meeting_\d{8}_\d{6}", h["meeting_id"]) and h["source"] == "planning_meeting_3"
    assert h["count"] == len(h["actions"])
    for a in h["actions"]:
        assert list(a) == ["id", "action", "owner", "priority", "estimated_duration", "success_criteria"]
        assert a["owner"] in EXECUTIVE_ROLES and a["priority"] in ("high", "medium", "low")
    assert (ws / "reports" / "handoff" / "README.md").is_file()
    assert (ws / "reports" / "handoff" / "pending_actions_TEMPLATE.json").is_file()


def test_execution_reports_follow_priority_and_record_tools(demo):
    ws, _ = demo
    files = sorted((ws / "reports" / "execution").glob("execution_*.json"))
    assert files
    rank = {"high": 0, "medium": 1, "low": 2}
    seen_tools = set()
    for f in files:
        rec = json.loads(f.read_text())
        for e in rec["executions"]:
            assert set(e) >= {"agent", "action_id", "tool", "arguments", "result", "status", "duration_s"}
            seen_tools.add(e["tool"])
    by_meeting: dict[str, list] = {}
    for f in files:
        rec = json.loads(f.read_text())
        by_meeting.setdefault(rec["meeting_id"], []).extend(rank[a["priority"]] for a in rec["actions"])
    for order in by_meeting.values():
        assert order == sorted(order)  # HIGH -> MEDIUM -> LOW across the phase
    assert {
        "create_v1_artifacts",
        "deploy_model",
        "run_evaluation",
        "replay_traffic",
        "collect_metrics",
        "run_rollback_drill",
    } <= seen_tools
    logs = "".join(f.read_text() for f in sorted((ws / "reports" / "execution").glob("deployments_*.log")))
    assert "deploy_model stage=shadow" in logs and "✅" in logs


def test_metrics_and_shadow_deployment(demo):
    ws, _ = demo
    m = json.loads((ws / "runs" / "report" / "metrics.json").read_text())
    shadow = m["stages"]["shadow"]
    assert shadow["ndcg_at_10"] >= 0.72 and 0 < shadow["latency_p95_ms"] < 50
    assert len(m["history"]) >= 1
    manifest = json.loads((ws / "deployment" / "shadow" / "manifest.json").read_text())
    from cvagents.durability.hashing import sha256_file

    art = ws / "deployment" / "shadow" / "versions" / manifest["version"] / manifest["artifact"]
    assert sha256_file(art) == manifest["sha256"] == sha256_file(ws / "research" / "v1_production.pth")


def test_feedback_reaches_the_next_meeting(demo):
    ws, _ = demo
    second = sorted((ws / "reports" / "planning").glob("transcript_meeting_*.md"))[1].read_text()
    assert re.search(r"Last execution phase: [1-9]\d* succeeded", second)
    assert "ndcg_at_10:" in second  # metrics against the gates are on the agenda


def test_status_reads_the_workspace(demo):
    ws, _ = demo
    p = subprocess.run(
        [sys.executable, "-m", "cvagents", "status", "--workspace", str(ws), "--json"], capture_output=True, text=True
    )
    s = json.loads(p.stdout)
    assert s["meetings"] == 3 and s["tools_succeeded"] > 0 and s["essential_present"]
    p = subprocess.run(
        [sys.executable, "-m", "cvagents", "status", "--workspace", str(ws)], capture_output=True, text=True
    )
    assert "📋 Meetings: 3" in p.stdout and "✅ Present" in p.stdout
