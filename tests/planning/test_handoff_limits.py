"""Issue 12, "limits on what agents and hand-written files can make the run do": a handoff
written by hand is held to a synthesised one's limits and refused in one line naming the file;
a refused handoff never stops the run and nothing of it is executed; the records a handoff
feeds stay bounded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import resume_helpers as rh
from fakes import synthesis_json

from cvagents.durability.journal import Journal
from cvagents.planning import handoff as hf
from cvagents.run.progress import OPEN_ACTIONS_SHOWN

TESTS = Path(__file__).resolve().parent.parent
OWNERS = {"ops_commander", "infra_guardian", "compliance_monitor"}


def action(i: int, **kw) -> dict:
    return {
        "id": i,
        "action": f"Check that the essential files exist (step {i}).",
        "owner": "infra_guardian",
        "priority": "low",
        "estimated_duration": "1min",
        "success_criteria": "check_files reports 0 missing files",
        **kw,
    }


def handoff(n: int, **kw) -> dict:
    acts = [action(i, **kw) for i in range(1, n + 1)]
    return {"timestamp": "t", "meeting_id": "meeting_x", "actions": acts, "count": n, "source": "by hand"}


@pytest.mark.parametrize(
    "content, says",
    [
        (json.dumps(handoff(10_000)).encode(), "actions: expected at most 20, got 10000"),
        (b'{"timestamp": "\xff\xfe"}', "not UTF-8 text (invalid start byte at byte 15)"),
        (b'{"timestamp": ', "not valid JSON: Expecting value: line 1 column 15 (char 14)"),
        (json.dumps(handoff(2, action="x" * 5000)).encode(), "actions.0.action: String should have at most 1000"),
        (json.dumps(handoff(20, owner="nobody")).encode(), "; and 17 more"),
        (b" " * (hf.HANDOFF_MAX_BYTES + 1), f"expected at most {hf.HANDOFF_MAX_BYTES} bytes"),
        (json.dumps({**handoff(1), "meeting_id": "m" * 100_000}).encode(), "meeting_id: String should have at most 80"),
    ],
)
def test_a_hand_written_handoff_beyond_the_limits_is_refused_in_one_line_naming_it(tmp_path, content, says):
    p = tmp_path / "pending_actions.json"
    p.write_bytes(content)
    with pytest.raises(hf.HandoffError) as e:
        hf.read_handoff(p, OWNERS, max_actions=20)
    msg = str(e.value)
    assert msg.startswith(f"{p}: ") and says in msg and "\n" not in msg and len(msg) < 600, msg


def test_a_handoff_within_the_limits_reads_as_before(tmp_path):
    p = tmp_path / "pending_actions.json"
    p.write_text(json.dumps(handoff(20)))
    assert hf.read_handoff(p, OWNERS, max_actions=20).count == 20


def test_a_synthesis_is_held_to_the_same_limits():
    too_many = synthesis_json([{k: v for k, v in action(i).items() if k != "id"} for i in range(1, 30)])
    with pytest.raises(hf.HandoffError, match="^actions: expected at most 20, got 29$"):
        hf.parse_synthesis(too_many, OWNERS, 20)
    too_long = synthesis_json([{k: v for k, v in action(1, success_criteria="y" * 2000).items() if k != "id"}])
    with pytest.raises(hf.HandoffError, match="success_criteria: String should have at most 1000"):
        hf.parse_synthesis(too_long, OWNERS, 20)


def _records(ws: Path) -> list:
    (session,) = (ws / "sessions").iterdir()
    j = Journal.open(session / "trajectories", read_only=True)
    try:
        return list(j.records(include_archived=True))
    finally:
        j.close()


@pytest.mark.parametrize(
    "content, says",
    [
        (json.dumps(handoff(10_000)).encode(), "actions: expected at most 20, got 10000"),
        (b'{"timestamp": "\xff\xfe", "actions": []}', "not UTF-8 text (invalid start byte at byte 15)"),
    ],
    ids=["10000-actions", "not-utf8"],
)
def test_a_resumed_run_refuses_a_hand_written_handoff_and_goes_on(tmp_path, content, says):
    """Through the CLI: a run killed after its meeting; the handoff replaced by hand; the resumed
    run says why it refuses it in one line per heartbeat, runs none of it, and ends normally."""
    ws = tmp_path / "ws"
    (tmp_path / "script.json").write_text("[]")
    first = subprocess.run(
        [sys.executable, str(TESTS / "scripted_cli.py"), str(tmp_path / "script.json"), str(tmp_path / "r.json")]
        + ["run", "--provider", "offline", "--meetings", "1", "--manual-clock", "--quiet", "--workspace", str(ws)],
        env={**os.environ, "CVAGENTS_CRASH_AT": "before:heartbeat_started"},
        capture_output=True,
        timeout=300,
    )
    assert first.returncode == -9, first.stderr[-2000:]  # killed before its first heartbeat
    hand = ws / "reports" / "handoff" / "pending_actions.json"
    hand.write_bytes(content)
    deployed = sorted(p for p in (ws / "deployment").rglob("*"))

    p = subprocess.run(
        [sys.executable, "-m", "cvagents", "run", "--provider", "offline", "--meetings", "1", "--manual-clock"]
        + ["--workspace", str(ws)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr[-3000:]
    line = f"❌ Handoff rejected: {hand}: {says}"
    log = (ws / "executive.log").read_text(encoding="utf-8")
    refusals = [x for x in log.splitlines() if "Handoff rejected" in x]
    assert refusals and all(x.endswith(line) for x in refusals), refusals
    assert line in p.stderr  # the console log

    recs = _records(ws)
    resumed = next(i for i, r in enumerate(recs) if r.kind == "session_resumed")
    after = [r.kind for r in recs[resumed:]]
    assert "heartbeat_completed" in after and "session_finished" in after
    assert not {"action_started", "tool_started", "tool_call"} & set(after)  # nothing of it executed
    done = [r.data for r in recs[resumed:] if r.kind == "heartbeat_completed"]
    assert all(d["handoff_error"] == f"{hand}: {says}" for d in done)
    reports = sorted((ws / "reports" / "execution").glob("execution_*.json"))
    assert json.loads(reports[-1].read_text())["handoff_error"] == f"{hand}: {says}"
    assert hand.read_bytes() == content and sorted((ws / "deployment").rglob("*")) == deployed
    journal_bytes = sum(f.stat().st_size for f in (ws / "sessions").rglob("*") if f.is_file())
    assert journal_bytes < 2_000_000  # not a copy of the 10,000 actions per record


def test_records_hold_the_next_open_actions_and_a_count_not_the_whole_handoff(tmp_path):
    plan = [(f"Check that the essential files exist (pass {i}).", "infra_guardian", "low") for i in range(12)]
    rh.seed(tmp_path)
    provider = rh.scripted_plan(plan)
    c = rh.coordinator(tmp_path, 1, provider=provider)
    try:
        c.run()
    finally:
        c.close()
    started = [r.data for r in rh.records(tmp_path) if r.kind in ("action_started", "meeting_started")]
    states = [d["state"] for d in started]
    assert len(states) == 13  # the meeting and its 12 actions
    assert all(len(s["open_actions"]) <= OPEN_ACTIONS_SHOWN for s in states)
    counts = [s["open_actions_count"] for s in states[1:]]
    assert counts == list(range(12, 0, -1))  # each action sees the ones still open, itself included
    assert states[1]["open_actions"][0]["action"] == plan[0][0]
