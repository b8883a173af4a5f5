"""run_python_script in its box (issue 12): the process group killed whole, resource limits from
config, no keys in its environment or its parent's, output bounded and redacted. Real scripts,
real processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cvagents.config import CoordinationConfig
from cvagents.execution.tools import ToolContext, default_registry
from cvagents.execution.tools.scripts import ScriptError, run_script
from cvagents.workspace import Workspace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from waiting import wait_for  # noqa: E402

PEEK = """
import os
entries = open(f"/proc/{os.getppid()}/environ", "rb").read().split(b"\\0")
for e in entries:
    print(e.decode(errors="replace"))
"""


def _ws(tmp_path, tools=None) -> tuple[Workspace, CoordinationConfig]:
    cfg = CoordinationConfig.model_validate({"tools": tools or {}})
    return Workspace.from_config(tmp_path / "ws", cfg).create(), cfg


def _script(ws: Workspace, name: str, body: str) -> str:
    (ws.research_dir / name).write_text(textwrap.dedent(body))
    return f"research/{name}"


def _alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


SPAWNER = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
open("child.pid", "w").write(str(child.pid))
{after}
"""


def test_a_timed_out_script_is_killed_with_every_process_it_started(tmp_path):
    ws, cfg = _ws(tmp_path, {"script_timeout_s": 8})
    path = _script(ws, "spawn.py", SPAWNER.format(after="time.sleep(600)"))
    with pytest.raises(ScriptError) as e:
        run_script(ws, cfg.tools, path, [])
    assert "timed out after 8 s" in str(e.value) and "every process it started" in str(e.value)
    pid = int((ws.root / "child.pid").read_text())
    assert wait_for(lambda: not _alive(pid), timeout=30), f"the script's child {pid} outlived the timeout"


def test_processes_a_script_leaves_running_are_killed_when_it_ends(tmp_path):
    ws, cfg = _ws(tmp_path)
    path = _script(ws, "daemon.py", SPAWNER.format(after="print('done')"))
    out = run_script(ws, cfg.tools, path, [])
    assert out["returncode"] == 0 and out["stdout"] == "done\n"
    pid = int((ws.root / "child.pid").read_text())
    assert wait_for(lambda: not _alive(pid), timeout=30), f"the script's child {pid} was left running"


def test_a_script_dies_with_the_run_that_started_it(tmp_path):
    """kill -9 of the run: its script does not run on unwatched (a resumed run may start it again)."""
    ws, _ = _ws(tmp_path)
    _script(ws, "long.py", "import os, time\nopen('script.pid', 'w').write(str(os.getpid()))\ntime.sleep(600)")
    run = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from pathlib import Path\n"
            "from cvagents.config import CoordinationConfig\n"
            "from cvagents.execution.tools.scripts import run_script\n"
            "from cvagents.workspace import Workspace\n"
            "cfg = CoordinationConfig()\n"
            f"run_script(Workspace.from_config(Path({str(ws.root)!r}), cfg), cfg.tools, 'research/long.py', [])\n",
        ]
    )
    pid_file = ws.root / "script.pid"
    try:
        assert wait_for(lambda: pid_file.is_file() and pid_file.read_text(), timeout=60)
    finally:
        run.kill()
        run.wait()
    pid = int(pid_file.read_text())
    assert wait_for(lambda: not _alive(pid), timeout=30), f"the script {pid} outlived its run"


def test_the_limits_from_config_are_set_on_the_script(tmp_path):
    limits = {"cpu_seconds": 120, "memory_mb": 2048, "file_size_mb": 64, "open_files": 200}
    ws, cfg = _ws(tmp_path, {"script_limits": limits})
    path = _script(
        ws,
        "limits.py",
        """
        import json, resource
        names = {"cpu_seconds": "RLIMIT_CPU", "memory_mb": "RLIMIT_DATA", "file_size_mb": "RLIMIT_FSIZE", "open_files": "RLIMIT_NOFILE"}
        print(json.dumps({k: resource.getrlimit(getattr(resource, v)) for k, v in names.items()}))
        """,
    )
    got = json.loads(run_script(ws, cfg.tools, path, [])["stdout"])
    mb = 1024 * 1024
    assert got == {
        "cpu_seconds": [120, 120],
        "memory_mb": [2048 * mb] * 2,
        "file_size_mb": [64 * mb] * 2,
        "open_files": [200, 200],
    }


@pytest.mark.parametrize(
    "limits, body, expected",
    [
        ({"file_size_mb": 1}, "open('big.bin', 'wb').write(b'x' * (3 * 1024 * 1024))", "File too large"),
        ({"memory_mb": 256}, "blob = bytearray(1024 * 1024 * 1024)", "MemoryError"),
        ({"open_files": 32}, "files = [open(__file__) for _ in range(64)]", "Too many open files"),
        ({"cpu_seconds": 1}, "while True: pass", "was killed by SIGKILL"),
    ],
)
def test_a_script_past_its_limits_fails(tmp_path, limits, body, expected):
    ws, cfg = _ws(tmp_path, {"script_limits": limits})
    path = _script(ws, "greedy.py", body)
    with pytest.raises(ScriptError) as e:
        run_script(ws, cfg.tools, path, [])
    assert expected in str(e.value)
    big = ws.root / "big.bin"
    assert not big.exists() or big.stat().st_size <= 1024 * 1024


def test_output_is_read_up_to_a_bound(tmp_path):
    ws, cfg = _ws(tmp_path, {"script_output_max_chars": 1000})
    path = _script(ws, "loud.py", "import sys\nfor _ in range(200): sys.stdout.write('y' * 50000)\nprint('end')")
    out = run_script(ws, cfg.tools, path, [])
    assert out["stdout"].startswith("y" * 1000) and out["stdout"].endswith("more bytes cut]")
    assert len(out["stdout"]) < 1100


def _driver(tmp_path: Path, keep_in_memory: bool) -> list[str]:
    """A real process started with a key in its environment (as the coordinator is) runs PEEK,
    which prints its parent's /proc environ; returns the lines of the tool's stdout."""
    ws, _ = _ws(tmp_path)
    _script(ws, "peek.py", PEEK)
    code = f"""
import json, sys
from pathlib import Path
from cvagents.config import CoordinationConfig
from cvagents.execution.tools import ToolContext, default_registry
from cvagents.secrets import KeyStore, keep_keys_in_memory
from cvagents.workspace import Workspace
KeyStore(dotenv_path=None, colab=False)  # the run's key store: it knows the key
cfg = CoordinationConfig()
ctx = ToolContext(Workspace.from_config(Path({str(ws.root)!r}), cfg), cfg, action_key="m#peek")
with keep_keys_in_memory(() if {not keep_in_memory} else ("OPENAI_API_KEY",)):
    o = default_registry().call(ctx, "run_python_script", {{"path": "research/peek.py"}})
print(json.dumps(o.as_dict()))
"""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(OPENAI_API_KEY=PLANTED, CVAGENTS_CANARY="seen")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert PLANTED not in p.stdout + p.stderr
    outcome = json.loads(p.stdout.strip().splitlines()[-1])
    assert outcome["status"] == "succeeded", outcome
    return outcome["result"]["stdout"].splitlines()


PLANTED = "plain-openai-key-without-a-shape-0123456789"  # only the key store's registry can catch it


def test_a_script_that_prints_a_key_gives_it_back_redacted(tmp_path):
    lines = _driver(tmp_path, keep_in_memory=False)
    assert "CVAGENTS_CANARY=seen" in lines  # it did read its parent's environment
    assert "OPENAI_API_KEY=[REDACTED]" in lines


def test_a_script_finds_no_key_in_the_run_that_started_it(tmp_path):
    lines = _driver(tmp_path, keep_in_memory=True)
    assert "CVAGENTS_CANARY=seen" in lines
    assert not [ln for ln in lines if "API_KEY" in ln or "REDACTED" in ln]  # gone, not merely hidden


# ---------------------------------------------------------------- through the CLI, a real run


def test_a_run_hands_its_scripts_no_keys(tmp_path, seeded_workspace, project_root):
    """``cvagents run`` on the configured providers (loopback servers, keys in the environment):
    the first executive tool call runs research/peek.py. The providers got their keys; the
    script read its parent's environment and found none; no key is in the workspace or in
    anything sent to a model."""
    import re

    from agent_backend import AgentBackend, _texts, env_for, start_servers
    from llm_servers import Received, Reply, anthropic_message, gemini_response, openai_completion

    keys = {
        "ANTHROPIC_API_KEY": "sk-ant-api03-SCRIPTBOXanthropic0123456789abcdef",
        "OPENAI_API_KEY": "plain-openai-SCRIPTBOX-0123456789abcdef",
        "GOOGLE_API_KEY": "AIzaSCRIPTBOXgoogle0123456789abcdefghij",
    }
    (seeded_workspace / "research" / "peek.py").write_text(PEEK)

    class PeekFirst(AgentBackend):
        """Agents as usual, except that the first executive asked to act runs research/peek.py."""

        peeked = False

        def __call__(self, kind: str, rec: Received) -> Reply:
            body = rec.json or {}
            _, results, tools = _texts(kind, body)
            with self.lock:
                peek = tools and results == 0 and not self.peeked
                self.peeked = self.peeked or bool(peek)
            if not peek:
                return super().__call__(kind, rec)
            calls = [("call_peek", "run_python_script", {"path": "research/peek.py"})]
            if kind == "anthropic":
                return Reply(body=anthropic_message(None, tool_calls=calls, model=body.get("model", "claude")))
            if kind == "openai":
                return Reply(body=openai_completion(None, tool_calls=calls, model=body.get("model", "gpt")))
            model = re.search(r"/models/([^/:]+):", rec.path).group(1)
            return Reply(body=gemini_response(None, function_calls=calls, model=model))

    backend = PeekFirst(malformed_first_synthesis=False)
    servers = start_servers(backend)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.endswith("_BASE_URL")}
    env.update(env_for(servers, keys), CVAGENTS_CANARY="seen")
    project = tmp_path / "project"
    for d in ("configs", "prompts", "reports"):
        shutil.copytree(project_root / d, project / d)
    try:
        p = subprocess.run(
            [sys.executable, "-m", "cvagents", "run", "--meetings", "1", "--manual-clock", "--quiet", "--strict"]
            + ["--project-root", str(project), "--workspace", str(seeded_workspace)],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
    finally:
        for s in servers.values():
            s.stop()
    assert p.returncode == 0, p.stderr[-3000:]
    assert backend.peeked
    heads = [r.headers for s in servers.values() for r in s.requests]
    assert any(h.get("authorization") == "Bearer " + keys["OPENAI_API_KEY"] for h in heads)  # keys reached providers
    runs = [
        e
        for f in (seeded_workspace / "reports" / "execution").glob("execution_*.json")
        for e in json.loads(f.read_text())["executions"]
        if e["tool"] == "run_python_script"
    ]
    assert runs and runs[0]["status"] == "succeeded", runs
    seen = runs[0]["result"]["stdout"].splitlines()
    assert "CVAGENTS_CANARY=seen" in seen and not [ln for ln in seen if "API_KEY" in ln]
    needles = [k.encode() for k in keys.values()]
    for path in seeded_workspace.rglob("*"):
        if path.is_file():
            assert not any(n in path.read_bytes() for n in needles), f"a key leaked into {path}"
    for s in servers.values():
        for r in s.requests:
            assert not any(n in r.body for n in needles), "a key was sent to a model"
    assert not any(k in p.stdout + p.stderr for k in keys.values())


def test_the_tool_is_registered_with_its_box(tmp_path):
    ws, cfg = _ws(tmp_path)
    _script(ws, "hello.py", "print('hi')")
    o = default_registry().call(
        ToolContext(ws, cfg, action_key="m#1"), "run_python_script", {"path": "research/hello.py"}
    )
    assert o.status == "succeeded" and o.result["stdout"] == "hi\n"
