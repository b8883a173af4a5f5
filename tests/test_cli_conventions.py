"""Issue 13, "a conventional CLI": a command's result on stdout (text, or one JSON document with
``--json``) and everything else on stderr; ``--version``; exit codes that mean something (0, 1,
2, 130, 141); no traceback when stdout's reader goes away; a workspace that does not exist is
refused and not created; ``approve`` and ``verify`` read the run's own configuration. Real
processes throughout: the CLI in subprocesses, a run interrupted with SIGINT."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from cli_helpers import cvagents, one_line_error, tree
from toy_models import SPEC, toy_env, write_collection, write_toy

from cvagents import cli
from cvagents.cli_conventions import ExitCode, run_exit_code
from cvagents.config import CoordinationConfig
from cvagents.rollout import deployment
from cvagents.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ran(tmp_path_factory, trained_artifacts) -> tuple[Path, subprocess.CompletedProcess]:
    """A workspace after ``cvagents run --json`` (one meeting, offline, manual clock)."""
    ws = tmp_path_factory.mktemp("conventions") / "ws"
    for sub in ("research", "data"):
        shutil.copytree(trained_artifacts / sub, ws / sub)
    p = cvagents("run", "--provider", "offline", "--meetings", "1", "--manual-clock", "--workspace", ws, "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    return ws, p


# ------------------------------------------------------------------ results to stdout, logs to stderr


def test_a_run_prints_only_its_result_on_stdout_and_its_log_on_stderr(ran):
    ws, p = ran
    result = json.loads(p.stdout)  # the whole of stdout is the one JSON document
    assert result["status"] == "finished" and result["meetings"] == 1 and result["heartbeats"] >= 1
    log = (ws / "executive.log").read_text(encoding="utf-8").splitlines()
    assert any("Meeting complete" in x for x in log) and any("[TOOL]" in x for x in log)
    assert set(log) <= set(p.stderr.splitlines())  # every line of the log, on the console's stderr
    assert "Meeting complete" not in p.stdout and "[TOOL]" not in p.stdout and "Traceback" not in p.stderr


def _version_in_shadow(ws: Path) -> dict:
    live = deployment.live(ws / "deployment" / "shadow")
    assert live, "the run deployed nothing to shadow"
    return live


#: command → (its JSON's check, the first words of its text)
REPORTING = {
    "status": (lambda d, ws: d["meetings"] == 1 and d["workspace"] == str(ws.resolve()), "🕐 "),
    "rebuild-reports": (lambda d, ws: d["meetings"] == 1 and d["session_id"], "rebuilt the reports of session "),
    "verify": (lambda d, ws: d["sound"] is True and d["sessions"] == 1 and d["problems"] == [], "sound: 1 session(s)"),
    "plot": (lambda d, ws: all(Path(x).read_bytes().startswith(b"\x89PNG") for x in d) and len(d) >= 5, None),
    "approve": (
        lambda d, ws: d["stage"] == "5_percent" and d["sha256"] == _version_in_shadow(ws)["sha256"],
        "approved v0001_",
    ),
}


@pytest.mark.parametrize("command", list(REPORTING))
def test_each_reporting_command_prints_one_json_document_with_json_and_text_without(ran, tmp_path, command):
    ws, _ = ran
    extra = {"plot": ["--out", tmp_path / "png"], "approve": ["--stage", "5_percent", "--by", "tester"]}.get(
        command, []
    )
    as_json = cvagents(command, "--workspace", ws, *extra, "--json")
    assert as_json.returncode == 0, as_json.stderr[-3000:]
    check, text_starts = REPORTING[command]
    assert check(json.loads(as_json.stdout), ws), as_json.stdout

    text = cvagents(command, "--workspace", ws, *extra)
    assert text.returncode == 0, text.stderr[-3000:]
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.stdout)
    if text_starts is None:  # plot: the files it wrote, one per line
        assert text.stdout.splitlines() == json.loads(as_json.stdout)
    else:
        assert text.stdout.startswith(text_starts), text.stdout
    if command == "approve":  # a stage that needs no approval: said on stderr, never in the result
        assert text.stderr.startswith("note: 5_percent is not under rollout.require_approval")


def test_submit_prints_the_registry_entry_as_json_or_a_line(tmp_path):
    ws = tmp_path / "ws"
    write_collection(ws / "data" / "validation_set")
    write_toy(ws / "research" / "a.json")
    write_toy(ws / "research" / "b.json", quality="good")
    p = cvagents("submit", "--workspace", ws, ws / "research" / "a.json", "--adapter", SPEC, "--json", env=toy_env())
    assert p.returncode == 0, p.stderr[-3000:]
    entry = json.loads(p.stdout)
    assert entry["name"] == "a" and entry["path"] == "research/a.json" and entry["adapter"] == SPEC
    p = cvagents("submit", "--workspace", ws, ws / "research" / "b.json", "--adapter", SPEC, env=toy_env())
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.startswith("submitted candidate b (sha256 ") and f"loaded by {SPEC}" in p.stdout


def test_create_artifacts_prints_what_it_trained_as_json(tmp_path):
    """Trains the demo model for real (the one command whose result takes ~20 s to make)."""
    ws = tmp_path / "ws"
    p = cvagents("create-artifacts", "--workspace", ws, "--json", timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    a = json.loads(p.stdout)
    assert Path(a["model_path"]) == ws / "research" / "v1_production.pth" and Path(a["model_path"]).is_file()
    assert (Path(a["validation_set"]) / "dataset_info.json").is_file() and 0 < a["validation_ndcg_at_10"] <= 1


def test_version_comes_from_the_installed_package():
    p = cvagents("--version")
    assert p.returncode == 0 and p.stdout == f"cvagents {metadata.version('cvagents')}\n" and p.stderr == ""


# ------------------------------------------------------------------------------ exit codes


def test_a_run_interrupted_with_ctrl_c_exits_130_with_its_result(seeded_workspace):
    """SIGINT once the run has logged its first line: it stops after the current step, prints its
    result (as text: one line) and exits 130, as a shell reports Ctrl-C."""
    ws = seeded_workspace
    p = subprocess.Popen(
        [sys.executable, "-m", "cvagents", "run", "--provider", "offline", "--time-scale", "1", "--workspace", str(ws)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert p.stderr is not None
        for line in p.stderr:  # until the first log line of the loop: the run is under way
            if "meeting" in line.lower():
                break
        else:
            pytest.fail("the run ended before it logged its first meeting")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == ExitCode.INTERRUPTED == 130, err[-3000:]
    assert "Traceback" not in err and len(out.splitlines()) == 1 and out.startswith("stopped: session "), out
    session = json.loads(next((ws / "sessions").glob("session_*/session.json")).read_text())
    assert session["status"] == "stopped"


@pytest.mark.parametrize(
    "status, code", [("finished", 0), ("stopped", 130), ("interrupted", 130), ("failed", 1), ("running", 1)]
)
def test_a_runs_exit_code_follows_its_results_status(status, code):
    assert run_exit_code(status) == code


def test_ctrl_c_outside_a_run_is_one_line_and_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_status", interrupted)
    assert cli.main(["status", "--workspace", "nowhere"]) == 130
    captured = capsys.readouterr()
    assert captured.err == "interrupted\n" and captured.out == ""


def test_a_bad_option_is_2(tmp_path):
    line = one_line_error(cvagents("run", "--provider", "offline", "--meetings", "0", "--workspace", tmp_path / "w"))
    assert line.startswith("error: --meetings:") and not (tmp_path / "w").exists()


def test_verify_exits_1_on_damage_and_says_so_in_its_json(ran, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(ran[0], ws)
    seg = sorted(ws.glob("sessions/session_*/trajectories/segment_*.jsonl"))[0]
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0x01
    seg.write_bytes(bytes(data))
    p = cvagents("verify", "--workspace", ws, "--json")
    assert p.returncode == ExitCode.FAILED == 1 and "Traceback" not in p.stderr, p.stderr
    d = json.loads(p.stdout)
    assert d["sound"] is False and any(x.startswith(str(seg)) for x in d["problems"]), d


# ----------------------------------------------------------------- stdout's reader goes away


@pytest.mark.parametrize(
    "args, code",
    [
        (["status"], 141),
        (["status", "--json"], 141),
        (["verify"], 141),
        (["rebuild-reports", "--json"], 141),
        (["plot", "--json", "--out", "PNG"], 141),
        (["--help"], 0),  # argparse's own: a help text it could not write is not an error
        (["--version"], 0),
    ],
    ids=lambda a: " ".join(a) if isinstance(a, list) else str(a),
)
def test_a_reader_that_closed_early_ends_the_command_quietly(ran, tmp_path, args, code):
    """``cvagents status | head -1`` where ``head`` has gone before the first write: a pipe whose
    reading end is closed. No traceback, nothing on stderr; a command's result that could not be
    written exits 141 (128 + SIGPIPE, as a shell reports a tool that SIGPIPE ended)."""
    ws, _ = ran
    argv = [str(tmp_path / "png") if a == "PNG" else a for a in args]
    if not argv[0].startswith("--"):
        argv += ["--workspace", str(ws)]
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run(
            [sys.executable, "-m", "cvagents", *argv], stdout=w, stderr=subprocess.PIPE, text=True, timeout=300
        )
    finally:
        os.close(w)
    assert p.returncode == code and p.stderr == "", p.stderr[-3000:]
    if code:
        assert code == ExitCode.READER_GONE


def test_status_piped_to_head_shows_its_first_lines(ran):
    ws, _ = ran
    p = subprocess.run(
        f"{sys.executable} -m cvagents status --workspace {ws} | head -3",
        shell=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert p.stdout.splitlines()[1:] == ["=" * 60, "📋 Meetings: 1"]


# ---------------------------------------------------------- a workspace that does not exist


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["status", "--json"],
        ["plot", "--out", "WS/plots"],
        ["approve", "--stage", "production"],
        ["verify"],
        ["submit", "WS/research/m.json"],
    ],
    ids=lambda c: " ".join(c),
)
def test_a_workspace_that_does_not_exist_is_refused_and_not_created(tmp_path, command):
    ws = tmp_path / "nowhere" / "ws"
    args = [a.replace("WS", str(ws)) for a in command]
    line = one_line_error(cvagents(*args, "--workspace", ws))
    assert line == f"error: {ws}: no such workspace or mirror folder"
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------- the run's own configuration


def _custom_plan() -> CoordinationConfig:
    """The shipped config with a stage plan of its own: dark → canary → full."""
    d = yaml.safe_load((ROOT / "configs" / "autonomous_coordination.yaml").read_text())
    s = d["rollout"]["stages"]
    d["rollout"]["stages"] = {"dark": s["shadow"], "canary": s["5_percent"], "full": s["production"]}
    d["rollout"]["require_approval"] = ["full"]
    return CoordinationConfig.model_validate(d)


def test_approve_accepts_the_stages_of_the_runs_own_plan(tmp_path):
    """The workspace's meta/workspace.json (what the run was started with) has stages the
    project's configs do not; approve takes them, even when told the project's config."""
    ws = Workspace.from_config(tmp_path / "ws", _custom_plan()).create()
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights" * 100)
    live = deployment.install(ws.stage_dir("canary"), model, source_label="m", action_id="a#1", time="t")
    default_cfg = ROOT / "configs" / "autonomous_coordination.yaml"

    refused = cvagents("approve", "--workspace", ws.root, "--stage", "production", "--coordination-config", default_cfg)
    assert one_line_error(refused) == "error: unknown stage 'production'; stages are dark, canary, full"
    assert not ws.approvals_dir.exists()

    p = cvagents("approve", "--workspace", ws.root, "--stage", "full", "--by", "alice", "--json")
    assert p.returncode == 0 and p.stderr == "", p.stderr
    rec = json.loads(p.stdout)
    assert (rec["stage"], rec["version"], rec["sha256"]) == ("full", live["version"], live["sha256"])
    assert rec["required"] is True and rec["approved_by"] == "alice"
    assert [f.name for f in ws.approvals_dir.iterdir()] == [f"full_{live['sha256'][:16]}.json"]


def test_verify_looks_for_sessions_where_the_run_put_them(ran, tmp_path):
    """A run whose layout keeps its sessions under journal/: verify finds them there, not in the
    project default's sessions/."""
    ws = tmp_path / "ws"
    shutil.copytree(ran[0], ws)
    (ws / "sessions").rename(ws / "journal")
    d = json.loads((ws / "meta" / "workspace.json").read_text())
    d["coordination"]["workspace"]["sessions"] = "journal"
    (ws / "meta" / "workspace.json").write_text(json.dumps(d))
    p = cvagents("verify", "--workspace", ws, "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["sessions"] == 1


# -------------------------------------------------------------------------- a config typo


def test_a_config_typo_names_the_near_key_and_the_allowed_ones(config_copy, tmp_path):
    cfg = config_copy / "configs" / "meeting.yaml"
    d = yaml.safe_load(cfg.read_text())
    d["agents"]["critic"]["provder"] = d["agents"]["critic"].pop("provider")
    cfg.write_text(yaml.safe_dump(d, sort_keys=False))
    ws = tmp_path / "ws"
    before = tree(config_copy)
    line = one_line_error(cvagents("run", "--provider", "offline", "--project-root", config_copy, "--workspace", ws))
    assert line.startswith(f"error: {cfg}: agents.critic.provder: unknown key; did you mean 'provider'? (allowed: ")
    assert "provider, model, prompt, base_url" in line and "missing" not in line
    assert not ws.exists() and tree(config_copy) == before
