"""``cvagents run --local-model URL --model NAME``: every agent, planning and executive, on one
loopback OpenAI-compatible server, with no key looked up, sent or written, and nothing falling
back to offline; the flag pairs refused in one line."""

import json
import os
import shutil
import socket

import pytest
from agent_backend import AgentBackend
from cli_helpers import cvagents, one_line_error
from llm_servers import LLMServer

from cvagents.ui.status import collect_status, format_status

PLANTED = {
    "OPENAI_API_KEY": "sk-proj-PLANTEDKEYopenai0123456789abcdef0123",
    "ANTHROPIC_API_KEY": "sk-ant-api03-PLANTEDKEYanthropic0123456789abcdef",
    "GOOGLE_API_KEY": "AIzaPLANTEDKEYgoogle0123456789abcdefghij",
}
PLACEHOLDER = "no-key-required"  # what the OpenAI provider sends a server that needs no key


def _env():
    """The caller's environment with real-looking keys planted: none may reach the local server."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.endswith("_BASE_URL")}
    return {**env, **PLANTED}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # free once the socket is closed: nothing listens there


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, trained_artifacts):
    ws = tmp_path_factory.mktemp("local") / "ws"
    for sub in ("research", "data"):
        shutil.copytree(trained_artifacts / sub, ws / sub)
    with LLMServer("openai", responder=AgentBackend(malformed_first_synthesis=False)) as srv:
        p = cvagents(
            "run",
            "--local-model",
            srv.base_url,
            "--model",
            "tiny",
            "--meetings",
            "1",
            "--time-scale",
            "6000",
            "--workspace",
            ws,
            "--json",
            env=_env(),
        )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return ws, p, srv


def _journal(ws):
    from cvagents.durability.journal import Journal

    j = Journal.open(next((ws / "sessions").glob("session_*")) / "trajectories", read_only=True)
    try:
        return list(j.records())
    finally:
        j.close()


def test_every_call_goes_to_the_local_server_with_its_model(local_run):
    ws, p, srv = local_run
    assert json.loads(p.stdout)["status"] == "finished"
    bodies = [r.json for r in srv.requests if r.method == "POST"]  # (a GET: the check that it is up)
    assert len(bodies) >= 7  # 5 contributions, the synthesis, and the executives' tool steps
    assert {b["model"] for b in bodies} == {"tiny"}
    assert any(b.get("tools") for b in bodies)  # the executives were served there too
    recs = _journal(ws)
    answers = [r.data for r in recs if r.kind == "agent_response"]
    assert answers and {(a["provider"], a["model"]) for a in answers} == {("openai", "tiny")}
    assert not [r for r in recs if r.kind == "agent_absent"]  # nothing fell over to offline
    execs = [
        e
        for f in (ws / "reports" / "execution").glob("execution_*.json")
        for e in json.loads(f.read_text())["executions"]
    ]
    assert any(e["status"] == "succeeded" for e in execs)
    transcript = next((ws / "reports" / "planning").glob("transcript_*.md")).read_text()
    assert "openai provider (tiny)" in transcript and "offline provider" not in transcript


def test_the_run_says_it_is_on_the_local_model(local_run):
    ws, p, srv = local_run
    said = f"12 of 12 on the local model tiny at {srv.base_url}"
    assert said in p.stderr and said in (ws / "executive.log").read_text()
    session = json.loads(next((ws / "sessions").glob("session_*/session.json")).read_text())
    agents = session["agents"]
    assert len(agents) == 12
    assert all(
        (a["provider"], a["model"], a["base_url"], a["local"], a["fallback"])
        == ("openai", "tiny", srv.base_url, True, None)
        for a in agents.values()
    )
    assert said in format_status(collect_status(ws))


def test_no_key_is_sent_or_written(local_run):
    ws, p, srv = local_run
    sent = {r.header("authorization") for r in srv.requests if r.method == "POST"}
    assert sent == {f"Bearer {PLACEHOLDER}"}  # never a key of the environment
    needles = [v.encode() for v in (*PLANTED.values(), PLACEHOLDER)]
    for path in ws.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(n in data for n in needles), f"a key went into {path}"
    assert not any(v in p.stdout + p.stderr for v in (*PLANTED.values(), PLACEHOLDER))


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--model", "tiny"], "error: --model: needs --local-model URL too"),
        (["--local-model", "http://127.0.0.1:9/v1"], "error: --local-model: needs --model NAME too"),
        (["--local-model", "localhost:11434", "--model", "tiny"], "error: --local-model: expected the http(s) URL"),
        (
            ["--local-model", "http://127.0.0.1:9/v1", "--model", "tiny", "--provider", "offline"],
            "error: --local-model: cannot be combined with --provider offline",
        ),
    ],
)
def test_a_flag_without_its_pair_is_one_line_and_creates_nothing(tmp_path, args, said):
    ws = tmp_path / "ws"
    p = cvagents("run", "--meetings", "1", "--workspace", ws, *args, timeout=60)
    assert one_line_error(p).startswith(said)
    assert not ws.exists()


def test_a_server_that_is_not_there_is_refused_before_the_run(tmp_path):
    ws = tmp_path / "ws"
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    p = cvagents("run", "--local-model", url, "--model", "tiny", "--meetings", "1", "--workspace", ws, timeout=60)
    line = one_line_error(p)
    assert line.startswith(f"error: --local-model: no server answers at {url} (")
    assert "ollama serve" in line
    assert not ws.exists()
