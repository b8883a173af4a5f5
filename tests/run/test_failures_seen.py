"""Failures a user can see: every failed or refused action writes its ``[TOOL] … ❌ <reason>``
line in executive.log (also when the agent never answered), and ``status`` counts what each
session did from its journal, the same on a workspace and on its mirror folder."""

from __future__ import annotations

from collections import Counter

from resume_helpers import coordinator, records, scripted_plan, seed

from cvagents.llm.base import ProviderError
from cvagents.rollout import decisions
from cvagents.ui.status import collect_status, format_status
from cvagents.workspace import Workspace

PLAN = [
    ("Deploy research/v1_production.pth to 50_percent.", "ops_commander", "high"),
    ("Run a rollback drill on shadow.", "rollback_officer", "high"),
    ("Deploy research/missing.pth to shadow.", "infra_guardian", "medium"),
    ("Deploy research/v1_production.pth to shadow.", "compliance_monitor", "low"),
]


def _provider():
    p = scripted_plan(PLAN)
    deploy = lambda path, stage: [("deploy_model", {"model_path": path, "stage": stage})]  # noqa: E731
    p.enqueue([deploy("research/v1_production.pth", "50_percent"), "RESULT: failed"], agent="ops_commander")
    p.always(ProviderError("anthropic: HTTP 529 overloaded, 3 retries"), agent="rollback_officer", purpose="action")
    p.enqueue([deploy("research/missing.pth", "shadow"), "RESULT: failed"], agent="infra_guardian")
    return p


def _run(ws, session, **opts):
    c = coordinator(ws, 1, provider=_provider(), session_id=session, **opts)
    try:
        return c.run()
    finally:
        c.close()


def test_every_failed_or_refused_action_writes_its_tool_line_with_the_reason(tmp_path):
    ws = seed(tmp_path / "ws")
    assert _run(ws, "t")["status"] == "finished"
    log = (ws / "executive.log").read_text(encoding="utf-8")
    tool_lines = [line for line in log.splitlines() if "[TOOL]" in line and ("✅" in line or "❌" in line)]
    # the controller refused the deploy past shadow: its reason is on the ❌ line
    refused = [d for d in decisions.read(Workspace.open(ws)) if d.get("outcome") == "refused"]
    assert refused and refused[0]["reason"]
    assert any("deploy_model(" in line and "❌ refused: " + refused[0]["reason"] in line for line in tool_lines)
    # the agent that never answered: no tool call, and still a ❌ line with why
    assert any(
        "rollback_officer for meeting_" in line
        and "❌ failed: rollback_officer did not answer: " in line
        and "HTTP 529 overloaded" in line
        for line in tool_lines
    )
    assert any(
        "deploy_model(model_path=research/missing.pth" in line and "❌ failed: " in line and "not found" in line
        for line in tool_lines
    )
    assert any("deploy_model(model_path=research/v1_production.pth, stage=shadow) ✅" in line for line in tool_lines)
    # one ❌ line per action that did not succeed, none twice
    finished = [r.data for r in records(ws) if r.kind == "action_finished"]
    bad = [f for f in finished if f["status"] != "succeeded"]
    assert len(bad) >= 3
    assert sum("❌" in line for line in tool_lines) == len(bad)


def _counts(s):
    return [(x["session_id"], x["meetings"], x["heartbeats"], x["tools"], x["actions"]) for x in s["sessions"]]


def test_status_counts_each_session_from_its_journal_on_the_workspace_and_its_mirror(tmp_path):
    ws, drive = seed(tmp_path / "ws"), tmp_path / "drive"
    drive.mkdir()
    assert _run(ws, "a", mirror_to=str(drive))["status"] == "finished"
    assert _run(ws, "b", mirror_to=str(drive), new_session=True)["status"] == "finished"
    local, mirrored = collect_status(ws), collect_status(drive)
    assert _counts(local) == _counts(mirrored)
    assert [x["session_id"] for x in local["sessions"]] == ["a", "b"]
    for x in local["sessions"]:  # what the journal holds, counted here on its own
        recs = records(ws, x["session_id"])
        assert x["tools"] == {
            k: Counter(r.data["status"] for r in recs if r.kind == "tool_call")[k]
            for k in ("succeeded", "failed", "refused")
        }
        assert x["actions"] == {
            k: Counter(r.data["status"] for r in recs if r.kind == "action_finished")[k]
            for k in ("succeeded", "failed", "refused", "unverified")
        }
        assert x["meetings"] == 1 and x["heartbeats"] == sum(r.kind == "heartbeat_completed" for r in recs) > 0
        assert x["tools"]["succeeded"] and x["tools"]["failed"] and x["tools"]["refused"] and x["actions"]["failed"]
    assert local["tools_refused"] == sum(x["tools"]["refused"] for x in local["sessions"])
    assert local["meetings"] == mirrored["meetings"] == 2
    for key in ("tools_succeeded", "tools_failed", "tools_refused", "actions"):
        assert local[key] == mirrored[key]
    shown = format_status(local)
    a = local["sessions"][0]
    assert (
        f"🧭 Session a: finished — 1 meetings, {a['heartbeats']} heartbeats; tools {a['tools']['succeeded']} succeeded"
        in shown
    )
    (ws / "executive.log").unlink()  # the counts never came from the log
    assert _counts(collect_status(ws)) == _counts(local)
