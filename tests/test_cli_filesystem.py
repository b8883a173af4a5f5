"""Issue 12, "every failure of the environment is one line; nothing partial left": a folder the
run cannot write to, a full disk mid-write (``ulimit -f``), a workspace path under a file —
``cvagents run`` exits 2 with ``error: <path>: <what>`` and no traceback, and no temp file of
an atomic write nor a ``.partial`` artifact of a deployment stays behind. A deploy that fails
mid-copy is a failed tool call, recorded, with nothing half-copied left (also tested directly)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import one_line_error

from cvagents.rollout import deployment

TESTS = Path(__file__).resolve().parent


def leftovers(root: Path) -> list[str]:
    return sorted(str(p) for pattern in (".*.tmp", "*.partial") for p in root.rglob(pattern))


def file_size_limit(nbytes: int):
    """For ``preexec_fn``: ``ulimit -f`` — a write past ``nbytes`` fails with EFBIG (Python
    ignores SIGXFSZ, so the write returns the error instead of killing the process)."""

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))

    return limit


def cvagents_run(ws: Path, *extra: str, prefix: list[str] | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "cvagents", "run", "--provider", "offline", "--meetings", "1"]
        + ["--manual-clock", "--quiet", "--workspace", str(ws), *extra],
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


def without_permission_bypass() -> list[str]:
    """Root ignores file modes: run as root without that power (``setpriv``), or skip."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: chmod cannot make a folder read-only here")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


def test_a_workspace_under_a_file(tmp_path):
    f = tmp_path / "afile"
    f.write_text("not a folder\n")
    line = one_line_error(cvagents_run(f / "ws"), stdout_empty=False)
    assert line == f"error: {f / 'ws'}: Not a directory"
    assert f.read_text() == "not a folder\n" and sorted(tmp_path.iterdir()) == [f]


def test_a_folder_the_run_cannot_write_mid_run_names_the_file_and_leaves_nothing_partial(tmp_path):
    ws = tmp_path / "ws"
    planning = ws / "reports" / "planning"
    planning.mkdir(parents=True)
    planning.chmod(0o555)
    try:
        prefix = without_permission_bypass()
        p = cvagents_run(ws, prefix=prefix)
        line = one_line_error(p, stdout_empty=False)
    finally:
        planning.chmod(0o755)
    # the meeting ran and was journaled; its first report could not be written
    assert line.startswith(f"error: {planning}/transcript_meeting_") and line.endswith(".md: Permission denied")
    assert list(planning.iterdir()) == [] and leftovers(ws) == []


def test_a_full_disk_mid_run_is_one_line_and_leaves_nothing_partial(tmp_path):
    ws = tmp_path / "ws"
    p = cvagents_run(ws, preexec_fn=file_size_limit(16 * 1024))
    line = one_line_error(p, stdout_empty=False)
    assert line.startswith(f"error: {ws}/") and line.endswith(": File too large"), line
    assert leftovers(ws) == []


def _deploying_workspace(tmp_path: Path, model_bytes: int) -> tuple[Path, Path]:
    ws = tmp_path / "ws"
    (ws / "research").mkdir(parents=True)
    (ws / "research" / "v1_production.pth").write_bytes(os.urandom(model_bytes))
    (ws / "data" / "validation_set").mkdir(parents=True)
    (ws / "data" / "validation_set" / "dataset_info.json").write_text('{"version": "1.0"}')
    act = {
        "action": "Deploy research/v1_production.pth to shadow.",
        "owner": "ops_commander",
        "priority": "high",
        "estimated_duration": "5min",
        "success_criteria": "deployment/shadow holds the model with a matching sha256",
    }
    script = tmp_path / "script.json"
    script.write_text(
        json.dumps([{"agent": "moderator", "purpose": "synthesis", "reply": json.dumps({"actions": [act]})}])
    )
    return ws, script


def test_a_deploy_cut_off_by_a_full_disk_is_a_failed_call_with_nothing_half_copied(tmp_path):
    """The model is larger than a file may grow; everything else the run writes is not."""
    ws, script = _deploying_workspace(tmp_path, 3_000_000)
    p = subprocess.run(
        [sys.executable, str(TESTS / "scripted_cli.py"), str(script), str(tmp_path / "requests.json")]
        + ["run", "--provider", "offline", "--meetings", "1", "--manual-clock", "--workspace", str(ws)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=file_size_limit(1_500_000),
    )
    assert p.returncode == 0 and "Traceback" not in p.stdout + p.stderr, p.stderr[-3000:]
    failed = [x for x in p.stderr.splitlines() if "deploy_model" in x]
    # the tool's warning, its [TOOL] line and the action's [ACTION] line with its evidence, one line each
    assert len(failed) == 3 and all("File too large" in x for x in failed), failed
    assert len([x for x in failed if "[ACTION]" in x]) == 1, failed
    reports = sorted((ws / "reports" / "execution").glob("execution_*.json"))
    calls = [e for r in reports for e in json.loads(r.read_text())["executions"] if e["tool"] == "deploy_model"]
    assert [c["status"] for c in calls] == ["failed"] and "File too large" in calls[0]["result"]["error"]
    assert leftovers(ws) == [] and deployment.live(ws / "deployment" / "shadow") is None
    assert not (ws / "deployment" / "shadow" / "versions").exists() or not any(
        (ws / "deployment" / "shadow" / "versions").iterdir()
    )


_INSTALL = """
import resource, sys
from pathlib import Path
from cvagents.rollout import deployment
resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))
try:
    deployment.install(Path(sys.argv[1]), Path(sys.argv[2]), source_label="m", action_id="a#1", time="t")
except OSError as e:
    print(e.errno)
"""


def test_install_cut_off_by_a_full_disk_leaves_no_partial(tmp_path):
    src = tmp_path / "model.pth"
    src.write_bytes(os.urandom(2_000_000))
    stage = tmp_path / "shadow"
    p = subprocess.run([sys.executable, "-c", _INSTALL, str(stage), str(src)], capture_output=True, text=True)
    assert p.stdout.strip() == "27" and p.stderr == ""  # EFBIG
    assert leftovers(tmp_path) == [] and list((stage / "versions").iterdir()) == []
    assert deployment.live(stage) is None


def test_install_whose_copy_fails_leaves_no_partial(tmp_path, monkeypatch):
    src = tmp_path / "model.pth"
    src.write_bytes(b"weights" * 1000)
    stage = tmp_path / "shadow"

    def half_copy(a, b):
        Path(b).write_bytes(Path(a).read_bytes()[:100])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(deployment.shutil, "copyfile", half_copy)
    with pytest.raises(OSError, match="No space left"):
        deployment.install(stage, src, source_label="m", action_id="a#1", time="t")
    assert leftovers(tmp_path) == [] and list((stage / "versions").iterdir()) == []
    monkeypatch.undo()
    m = deployment.install(stage, src, source_label="m", action_id="a#1", time="t")  # then a retry works
    assert m["version"].startswith("v0001_") and deployment.verify(stage)[0]
