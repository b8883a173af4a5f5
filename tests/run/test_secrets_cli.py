"""Issue 12, "secrets never leave memory, by construction": a key in an agent's answer or in a
tool's result is redacted before it is journaled, written to reports/, logged or sent to
another agent — through the CLI in a subprocess, and at the recorder itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fakes import synthesis_json
from pydantic import BaseModel

from cvagents.config import Settings
from cvagents.execution.tools import ToolContext, ToolRegistry
from cvagents.execution.tools.registry import Tool
from cvagents.run.recorder import Recorder
from cvagents.secrets import REDACTED, forget_secrets, register_secret
from cvagents.workspace import Workspace

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent
KEY = "plain-words-secret-0123456789"  # registered, not shaped like any key: only the registry knows it


class NoArgs(BaseModel):
    pass


def scripted_cli(tmp: Path, script: list[dict], *args, env: dict | None = None):
    """``cvagents <args>`` in a subprocess with its agents on the scripted fake; (process, requests)."""
    (tmp / "script.json").write_text(json.dumps(script))
    out = tmp / "requests.json"
    p = subprocess.run(
        [sys.executable, str(TESTS / "scripted_cli.py"), str(tmp / "script.json"), str(out), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    return p, json.loads(out.read_text()) if out.exists() else []


def test_a_key_in_an_answer_or_a_tool_result_reaches_no_file_no_log_and_no_agent(tmp_path):
    ws = tmp_path / "ws"
    (ws / "research").mkdir(parents=True)
    (ws / "research" / "leak.py").write_text(f"print('the key is {KEY}')\n")
    action = {
        "action": "Run research/leak.py and report what it prints.",
        "owner": "infra_guardian",
        "priority": "high",
        "estimated_duration": "1min",
        "success_criteria": "the script exits with status 0",
    }
    script = [
        {"purpose": "contribution", "reply": f"My view: use {KEY} for the canary."},
        {
            "agent": "moderator",
            "purpose": "synthesis",
            "reply": synthesis_json([action], [{"decision": f"Proceed; key {KEY}", "rationale": "x"}]),
        },
        {
            "agent": "infra_guardian",
            "purpose": "action",
            "reply": [["run_python_script", {"path": "research/leak.py"}]],
        },
        {"agent": "infra_guardian", "purpose": "action", "reply": f"RESULT: succeeded — it printed {KEY}"},
    ]
    p, requests = scripted_cli(
        tmp_path,
        script,
        *("run", "--provider", "offline", "--meetings", "1", "--manual-clock", "--workspace", ws),
        env={"ANTHROPIC_API_KEY": KEY},
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert KEY not in p.stdout + p.stderr

    # the scripted answers were given, and the script did print the key
    asked = [r for r in requests if r["agent"] == "infra_guardian" and r["purpose"] == "action"]
    assert len(asked) == 2 and '"returncode": 0' in asked[1]["messages"][-1]
    assert REDACTED in asked[1]["messages"][-1]  # the tool result the agent was sent
    synthesis = next(r for r in requests if r["purpose"] == "synthesis")
    assert "My view: use [REDACTED] for the canary." in synthesis["messages"][-1]  # the contribution passed on
    assert not [r for r in requests if KEY in json.dumps(r)]

    written = {f: f.read_bytes() for f in ws.rglob("*") if f.is_file() and f.parent.name != "research"}
    assert any(f.name == "executive.log" for f in written) and any("segment" in f.name for f in written)
    assert [str(f) for f, data in written.items() if KEY.encode() in data] == []
    texts = b"".join(d for f, d in written.items() if f.suffix in (".md", ".log", ".json")).decode()
    assert "Proceed; key [REDACTED]" in texts and "it printed [REDACTED]" in texts  # redacted, not dropped


def test_the_recorder_redacts_what_a_tool_returns_before_it_is_journaled_or_answered(tmp_path):
    register_secret(KEY)
    try:
        records: list[tuple[str, dict]] = []
        leaky = Tool("leaky", "returns a key", NoArgs, lambda ctx, a: {"out": KEY})
        rec = Recorder(ToolRegistry([leaky]), lambda kind, data: records.append((kind, data)))
        s = Settings(ROOT)
        ctx = ToolContext(Workspace.from_config(tmp_path, s.coordination), s.coordination, action_key="m#1")
        outcome = rec.action("m#1").call(ctx, "leaky", {})
        assert outcome.ok and outcome.result["out"] == REDACTED  # what the agent is sent
        assert records and KEY not in json.dumps(records)
        assert [k for k, _ in records] == ["tool_started", "tool_call"]
    finally:
        forget_secrets()
