"""Issue 12, "oversized answers": an agent's answer is cut at a bound derived from its
``max_tokens``, with the cut said in the response record and the transcript; a 5 MB answer with
``max_tokens`` 1500 is neither taken whole nor journaled whole anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fakes import ScriptedProvider, synthesis_json

from cvagents.durability.journal import Journal
from cvagents.llm.base import LLMRequest
from cvagents.llm.factory import CHARS_PER_TOKEN_BOUND, CUT, ManagedProvider

TESTS = Path(__file__).resolve().parent.parent
BIG = 5_000_000


def managed(fake: ScriptedProvider) -> ManagedProvider:
    return ManagedProvider("critic", [fake], ledger=None, pricing=None, budgets=None, warnings=[])


def test_an_answer_past_the_bound_is_cut_and_says_so():
    fake = ScriptedProvider.as_offline("é" * BIG, "fits " * 100)
    req = LLMRequest(agent="critic", role="critic", purpose="contribution", system="s", messages=(), max_tokens=1500)
    cut = managed(fake).complete(req)
    limit = 1500 * CHARS_PER_TOKEN_BOUND
    assert cut.stop_reason == CUT and cut.text.startswith("é" * limit + "\n[cut by cvagents: ")
    assert cut.text.endswith(f"the answer held {BIG} characters; the bound is {limit} (1500 max_tokens × 8)]")
    assert len(cut.text) < limit + 200
    whole = managed(fake).complete(req)
    assert whole.text == "fits " * 100 and whole.stop_reason != CUT  # within the bound: untouched


def test_a_5_mb_answer_is_cut_before_it_is_journaled_or_passed_on(tmp_path):
    ws = tmp_path / "ws"
    act = {
        "action": "Check that the essential files exist.",
        "owner": "infra_guardian",
        "priority": "high",
        "estimated_duration": "1min",
        "success_criteria": "check_files reports 0 missing files",
    }
    script = [
        {"agent": "critic", "purpose": "contribution", "reply": "c" * BIG},
        {"agent": "moderator", "purpose": "synthesis", "reply": synthesis_json([act])},
        {"agent": "infra_guardian", "purpose": "action", "reply": ("RESULT: succeeded " + "r" * BIG)[:BIG]},
    ]
    (tmp_path / "script.json").write_text(json.dumps(script))
    p = subprocess.run(
        [sys.executable, str(TESTS / "scripted_cli.py"), str(tmp_path / "script.json"), str(tmp_path / "req.json")]
        + ["run", "--provider", "offline", "--meetings", "1", "--manual-clock", "--quiet", "--workspace", str(ws)],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )
    assert p.returncode == 0, p.stderr[-3000:]
    limit = 1500 * CHARS_PER_TOKEN_BOUND
    note = f"[cut by cvagents: the answer held {BIG} characters; the bound is {limit} (1500 max_tokens × 8)]"

    (session,) = (ws / "sessions").iterdir()
    j = Journal.open(session / "trajectories", read_only=True)
    try:
        recs = list(j.records(include_archived=True))
    finally:
        j.close()
    responses = {r.data["agent"]: r.data for r in recs if r.kind == "agent_response"}
    for agent in ("critic", "infra_guardian"):
        assert responses[agent]["stop_reason"] == CUT and responses[agent]["text"].endswith(note)
        assert len(responses[agent]["text"]) == limit + 1 + len(note)
    # every copy the journal holds is the cut one; the whole journal is a fraction of one answer
    assert sum(f.stat().st_size for f in session.rglob("*") if f.is_file()) < BIG // 20
    transcript = next((ws / "reports" / "planning").rglob("transcript_*.md")).read_text(encoding="utf-8")
    assert note in transcript and "c" * (limit + 1) not in transcript
    # the moderator was sent the cut contribution, not 5 MB
    synthesis = next(r for r in json.loads((tmp_path / "req.json").read_text()) if r["purpose"] == "synthesis")
    assert note in synthesis["messages"][-1] and len(synthesis["messages"][-1]) < limit + 50_000
    assert note in (ws / "executive.log").read_text(encoding="utf-8")  # the cut is logged
