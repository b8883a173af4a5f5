"""``cvagents`` as a user meets it when something is wrong (issues 10 and 12): one line on stderr,
``error: <path>: <what>``, exit code 2, no traceback, and nothing created, damaged or run.
Real processes: the CLI in subprocesses, a second run against a live first one, kill -9."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cli_helpers import cvagents, one_line_error, tree
from waiting import wait_for

from cvagents import cli
from cvagents.errors import CVAgentsError
from cvagents.secrets import forget_secrets, register_secret


def _edit(path: Path, fn) -> None:
    data = yaml.safe_load(path.read_text())
    fn(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _light(project: Path) -> Path:
    """The shipped config, with a lighter traffic replay and bootstrap (same rollout shape)."""

    def lighten(c):
        c["rollout"]["replay"]["requests_per_minute"] = 12
        for s in c["rollout"]["stages"].values():
            s["min_requests"] = max(1, s["min_requests"] // 10)
        c["evaluation"]["bootstrap_samples"] = 100

    _edit(project / "configs" / "autonomous_coordination.yaml", lighten)
    return project


# ------------------------------------------------------------- config that loads but should not


def _reorder(d, names):
    d["rollout"]["stages"] = {n: d["rollout"]["stages"][n] for n in names}


@pytest.mark.parametrize(
    "edit, says",
    [
        (
            lambda d: _reorder(d, ["production", "shadow", "5_percent", "20_percent", "50_percent"]),
            "rollout.stages.production.traffic: expected 0 (the first stage serves no traffic",
        ),
        (
            lambda d: d["rollout"]["stages"]["50_percent"].__setitem__("traffic", 0.1),
            "rollout.stages.50_percent.traffic: expected more than 20_percent's 0.2",
        ),
        (
            lambda d: d["workspace"].__setitem__("sessions", "/tmp/elsewhere"),
            'workspace.sessions: expected a path relative to the workspace and inside it (no leading / or ~, no ..), got "/tmp/elsewhere"',
        ),
        (
            lambda d: d["workspace"].__setitem__("deployment", "../deployment"),
            'workspace.deployment: expected a path relative to the workspace and inside it (no leading / or ~, no ..), got "../deployment"',
        ),
        (
            lambda d: d["tools"].__setitem__("script_folders", ["/usr/lib/python3"]),
            "tools.script_folders: expected a path relative to the workspace",
        ),
    ],
)
def test_a_config_that_should_not_load_stops_the_run_before_anything_exists(config_copy, tmp_path, edit, says):
    cfg = config_copy / "configs" / "autonomous_coordination.yaml"
    _edit(cfg, edit)
    ws = tmp_path / "ws"
    line = one_line_error(cvagents("run", "--provider", "offline", "--project-root", config_copy, "--workspace", ws))
    assert line.startswith(f"error: {cfg}: ") and says in line
    assert not ws.exists() and not (tmp_path / "elsewhere").exists()


def test_a_key_given_twice_names_both_lines(config_copy, tmp_path):
    cfg = config_copy / "configs" / "meeting.yaml"
    lines = cfg.read_text().splitlines()
    first = lines.index("  per_day_usd: 60.0") + 1
    cfg.write_text("\n".join(lines) + "\n  per_day_usd: 600.0  # silently the value before issue 12\n")
    ws = tmp_path / "ws"
    line = one_line_error(cvagents("run", "--provider", "offline", "--project-root", config_copy, "--workspace", ws))
    assert line == (
        f"error: {cfg}: budgets.per_day_usd: given twice (lines {first} and {len(lines) + 1}); expected each key once"
    )
    assert not ws.exists()


@pytest.mark.parametrize(
    "args, says",
    [
        (["--meetings", "-1"], "--meetings: expected a whole number of meetings, at least 1, got -1"),
        (["--meetings", "0"], "--meetings: expected a whole number of meetings, at least 1, got 0"),
        (["--time-scale", "0"], "--time-scale: expected a number above 0"),
        (["--time-scale", "-600"], "--time-scale: expected a number above 0"),
        (["--time-scale", "nan"], "--time-scale: expected a number above 0"),
        (["--session-id", "../../escape"], "--session-id: expected a session id as cvagents makes them"),
        (["--session-id", "20250101_000000_1a2b3c/../../escape"], "--session-id: expected a session id"),
        (["--start-time", "tomorrow-ish"], "--start-time: expected an ISO 8601 time"),
    ],
)
def test_bad_options_stop_the_run_before_anything_exists(tmp_path, args, says):
    ws = tmp_path / "a" / "ws"
    line = one_line_error(cvagents("run", "--provider", "offline", "--workspace", ws, *args))
    assert line.startswith(f"error: {says}")
    assert not (tmp_path / "a").exists() and not (tmp_path / "escape").exists()


def test_a_mirror_naming_a_session_outside_the_workspace_is_refused(tmp_path):
    mirror = tmp_path / "drive"
    mirror.mkdir()
    (mirror / "MANIFEST.json").write_text(json.dumps({"files": {}, "extra": {"session_id": "../../../escape"}}))
    before = tree(mirror)
    ws = tmp_path / "ws"
    line = one_line_error(cvagents("run", "--provider", "offline", "--resume-from", mirror, "--workspace", ws))
    assert line.startswith(f"error: {mirror}/MANIFEST.json: extra.session_id: expected a session id")
    assert "'../../../escape'" in line
    assert not ws.exists() and not (tmp_path / "escape").exists() and tree(mirror) == before


def test_rebuild_reports_refuses_a_session_id_that_is_a_path(tmp_path):
    line = one_line_error(cvagents("rebuild-reports", "--workspace", tmp_path / "ws", "--session", "../x"))
    assert line.startswith("error: --session: expected a session id") and not (tmp_path / "ws").exists()


# ------------------------------------------------------------------- the environment fails


def test_a_workspace_path_that_is_a_file(tmp_path):
    ws = tmp_path / "ws"
    ws.write_text("not a folder\n")
    line = one_line_error(cvagents("run", "--provider", "offline", "--meetings", "1", "--workspace", ws))
    assert line == f"error: {ws}: the workspace is a file, not a folder"
    assert ws.read_text() == "not a folder\n"


def _without_permission_bypass() -> list[str]:
    """A prefix that runs a command without root's power to ignore file permissions: nothing
    for a normal user; for root, ``setpriv`` with those capabilities dropped."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("root without setpriv: file permissions cannot be made to apply")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


def test_a_read_only_workspace(tmp_path, seeded_workspace):
    before = tree(seeded_workspace)
    for p in [seeded_workspace, *seeded_workspace.rglob("*")]:
        p.chmod(p.stat().st_mode & ~0o222)
    try:
        p = subprocess.run(
            [*_without_permission_bypass(), sys.executable, "-m", "cvagents", "run", "--provider", "offline"]
            + ["--meetings", "1", "--manual-clock", "--workspace", str(seeded_workspace)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        line = one_line_error(p)
    finally:
        for q in [seeded_workspace, *seeded_workspace.rglob("*")]:
            q.chmod(q.stat().st_mode | 0o200)
    assert line == f"error: {seeded_workspace / '.cvagents.lock'}: Permission denied"
    assert tree(seeded_workspace) == before


def test_a_full_disk_mid_run_is_one_line(tmp_path, seeded_workspace):
    """``ulimit -f``: files past 64 KB cannot be written; the run stops on the first such write."""
    import resource

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    p = subprocess.run(
        [sys.executable, "-m", "cvagents", "run", "--provider", "offline", "--meetings", "1", "--manual-clock"]
        + ["--quiet", "--workspace", str(seeded_workspace)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=small_files,
    )
    line = one_line_error(p)
    assert line.startswith(f"error: {seeded_workspace}/") and "File too large" in line, line


# --------------------------------------------------------------- how main() maps what it catches


def _main_with(monkeypatch, capsys, fn) -> tuple[int, str]:
    monkeypatch.setattr(cli, "cmd_status", lambda args: fn())
    code = cli.main(["status", "--workspace", "nowhere"])
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    return code, err.strip()


def test_a_file_that_is_not_utf8_is_named(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "pending_actions.json"
    bad.write_bytes(b'{"actions": "\xff\xfe"}')
    code, err = _main_with(monkeypatch, capsys, lambda: json.loads(bad.read_text(encoding="utf-8")))
    assert code == 2 and err == f"error: {bad}: not UTF-8 text (invalid start byte at byte 13)"


def test_unreadable_json_is_named(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "session.json"
    bad.write_text('{"status": running}')

    def read(path=str(bad)):
        return json.loads(Path(path).read_text())

    code, err = _main_with(monkeypatch, capsys, read)
    assert code == 2 and err == f"error: {bad}: not valid JSON: Expecting value (line 1, column 12)"


def test_a_write_that_fails_names_what_it_wrote(tmp_path, monkeypatch, capsys):
    class Segment:
        path = tmp_path / "segment_000001.jsonl"

        def append(self):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # os.write on a descriptor: no file name

    code, err = _main_with(monkeypatch, capsys, lambda: Segment().append())
    assert code == 2 and err == f"error: {Segment.path}: No space left on device"

    def denied():
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "x"))

    assert _main_with(monkeypatch, capsys, denied) == (2, f"error: {tmp_path / 'x'}: Permission denied")


def test_known_errors_are_one_redacted_line(monkeypatch, capsys):
    forget_secrets()
    register_secret("very-secret-value-0042")

    class Refused(CVAgentsError):
        exit_code = 2

    def fail():
        raise Refused("/ws/reports: the server said\nbad key very-secret-value-0042")

    try:
        assert _main_with(monkeypatch, capsys, fail) == (2, "error: /ws/reports: the server said bad key [REDACTED]")
    finally:
        forget_secrets()


@pytest.mark.parametrize("bug", [ValueError("a bug"), KeyError("a bug"), TypeError("a bug")])
def test_bugs_show_as_bugs(monkeypatch, bug):
    def fail():
        raise bug

    monkeypatch.setattr(cli, "cmd_status", lambda args: fail())
    with pytest.raises(type(bug)):
        cli.main(["status", "--workspace", "nowhere"])


# ------------------------------------------------------------------- one run per workspace


def test_one_run_per_workspace(tmp_path, seeded_workspace, config_copy):
    """A live run holds the workspace: a second run, with or without --new-session, is refused
    naming it, and changes nothing; status and plot still read it. Killed with kill -9, it
    leaves a lock the next run takes over, continuing its session."""
    project, ws = _light(config_copy), seeded_workspace
    lock = ws / ".cvagents.lock"
    first = subprocess.Popen(
        [sys.executable, "-m", "cvagents", "run", "--provider", "offline", "--time-scale", "1", "--quiet"]
        + ["--project-root", str(project), "--workspace", str(ws)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def first_session() -> list[Path]:
            return [p for p in (ws / "sessions").glob("session_*") if (p / "session.json").is_file()]

        def holder() -> dict:
            try:
                return json.loads(lock.read_text() or "{}")
            except (OSError, ValueError):
                return {}

        assert wait_for(lambda: holder().get("pid") == first.pid and first_session(), timeout=240), (
            "the first run never started"
        )
        (session,) = first_session()
        since = holder()["since"]
        for extra in ([], ["--new-session"]):
            second = cvagents(
                "run",
                "--provider",
                "offline",
                "--meetings",
                "1",
                "--manual-clock",
                *extra,
                "--project-root",
                project,
                "--workspace",
                ws,
            )
            line = one_line_error(second)
            assert line == f"error: {ws}: workspace in use by run {first.pid} since {since}"
            assert first_session() == [session] and holder()["pid"] == first.pid
        assert first.poll() is None, "the second run disturbed the first"
        status = cvagents("status", "--workspace", ws, "--json")
        assert status.returncode == 0 and json.loads(status.stdout), status.stderr
        plot = cvagents("plot", "--workspace", ws, "--out", tmp_path / "plots")
        assert plot.returncode == 0, plot.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert holder()["pid"] == first.pid  # the dead run's stamp is still there; its flock is not

    after = cvagents(
        "run",
        "--provider",
        "offline",
        "--meetings",
        "1",
        "--manual-clock",
        "--quiet",
        "--project-root",
        project,
        "--workspace",
        ws,
        "--json",
        timeout=600,
    )
    assert after.returncode == 0, after.stderr[-3000:]
    result = json.loads(after.stdout)
    assert result["session_id"] == session.name.removeprefix("session_") and result["status"] == "finished"
    stamp = holder()
    assert stamp["pid"] != first.pid and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", stamp["since"])
