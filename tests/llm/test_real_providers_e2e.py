"""``cvagents run`` with all twelve agents on their configured providers — the official
Anthropic, OpenAI and Gemini SDKs — pointed at loopback servers through the SDKs' own
environment variables. No key may leave memory."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml
from agent_backend import AgentBackend, env_for, start_servers

KEYS = {
    "ANTHROPIC_API_KEY": "sk-ant-api03-PLANTEDKEYanthropic0123456789abcdef",
    "OPENAI_API_KEY": "sk-proj-PLANTEDKEYopenai0123456789abcdef0123",
    "GOOGLE_API_KEY": "AIzaPLANTEDKEYgoogle0123456789abcdefghij",
}


def _run(ws, env_extra, *args):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.endswith("_BASE_URL")}
    env.update(env_extra)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cvagents",
            "run",
            "--meetings",
            "2",
            "--time-scale",
            "6000",
            "--workspace",
            str(ws),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.fixture(scope="module")
def real_run(tmp_path_factory, trained_artifacts):
    ws = tmp_path_factory.mktemp("real") / "ws"
    for sub in ("research", "data"):
        shutil.copytree(trained_artifacts / sub, ws / sub)
    backend = AgentBackend()
    servers = start_servers(backend)
    try:
        p = _run(ws, env_for(servers, KEYS), "--strict")
    finally:
        for s in servers.values():
            s.stop()
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return ws, p, backend, servers


def test_all_twelve_agents_spoke_through_their_sdks(real_run):
    ws, p, backend, servers = real_run
    assert all(n > 0 for n in backend.calls.values()), backend.calls
    t = sorted((ws / "reports" / "planning").glob("transcript_*.md"))[0].read_text()
    assert "anthropic provider (claude-opus-4-20250514)" in t
    assert "openai provider (gpt-4-turbo)" in t
    assert "gemini provider (gemini-2.0-flash)" in t
    assert "offline provider" not in t
    # the keys reached the servers in each SDK's own header
    heads = [r.headers for s in servers.values() for r in s.requests]
    assert any(
        h.get("x-api-key") == KEYS["ANTHROPIC_API_KEY"]
        or h.get("authorization") == "Bearer " + KEYS["ANTHROPIC_API_KEY"]
        for h in heads
    )
    assert any(h.get("x-goog-api-key") == KEYS["GOOGLE_API_KEY"] for h in heads)


def test_malformed_synthesis_was_repaired(real_run):
    ws, p, backend, _ = real_run
    assert backend.repairs_seen >= 1
    s = sorted((ws / "reports" / "planning").glob("summary_*.md"))[0].read_text()
    assert "failed the action schema" in s
    h = json.loads((ws / "reports" / "handoff" / "pending_actions.json").read_text())
    assert h["count"] == len(h["actions"]) > 0


def test_executives_called_tools_natively(real_run):
    ws, p, backend, _ = real_run
    assert backend.tool_calls_sent >= 3
    execs = [
        e
        for f in (ws / "reports" / "execution").glob("execution_*.json")
        for e in json.loads(f.read_text())["executions"]
    ]
    assert any(e["tool"] == "deploy_model" and e["status"] == "succeeded" for e in execs)
    assert any(e["tool"] == "run_evaluation" and e["status"] == "succeeded" for e in execs)


def test_costs_are_recorded_per_agent_meeting_and_day(real_run):
    ws, *_ = real_run
    c = json.loads((ws / "reports" / "costs.json").read_text())
    assert c["total_usd"] > 0 and c["by_agent"]["moderator"] > 0 and len(c["by_meeting"]) == 2
    s = sorted((ws / "reports" / "planning").glob("summary_*.md"))[0].read_text()
    assert "| moderator |" in s and "cost (USD)" in s


def test_no_key_is_written_anywhere(real_run):
    ws, p, *_ = real_run
    needles = [k.encode() for k in KEYS.values()]
    for path in ws.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(n in data for n in needles), f"a key leaked into {path}"
    assert not any(k in p.stdout + p.stderr for k in KEYS.values())


def test_tiny_budget_keeps_spending_under_it(tmp_path, seeded_workspace, project_root):
    root = tmp_path / "project"
    for d in ("configs", "prompts", "reports"):
        shutil.copytree(project_root / d, root / d)
    cfg = yaml.safe_load((root / "configs" / "meeting.yaml").read_text())
    cfg["budgets"] = {"per_meeting_usd": 0.05, "per_day_usd": 0.08}
    (root / "configs" / "meeting.yaml").write_text(yaml.safe_dump(cfg))
    backend = AgentBackend(malformed_first_synthesis=False)
    servers = start_servers(backend)
    try:
        p = _run(seeded_workspace, env_for(servers, KEYS), "--project-root", str(root))
    finally:
        for s in servers.values():
            s.stop()
    assert p.returncode == 0, p.stderr[-3000:]
    c = json.loads((seeded_workspace / "reports" / "costs.json").read_text())
    assert all(v <= 0.05 + 1e-9 for v in c["by_meeting"].values()), c["by_meeting"]
    assert all(v <= 0.08 + 1e-9 for v in c["by_day"].values()), c["by_day"]
    assert c["downgrades"], "a tiny budget must force downgrades"
    summary = sorted((seeded_workspace / "reports" / "planning").glob("summary_*.md"))[-1].read_text()
    assert "budget" in summary.lower()


def test_missing_key_falls_back_to_offline_with_a_warning_or_fails_when_strict(seeded_workspace):
    p = _run(seeded_workspace, {}, "--strict")
    assert p.returncode != 0 and "ANTHROPIC_API_KEY" in p.stderr
    p = _run(seeded_workspace, {})
    assert p.returncode == 0
    assert "no API key for anthropic" in p.stdout + p.stderr
