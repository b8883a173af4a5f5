"""Interrupting the coordinator: a notebook cell interrupt (``KeyboardInterrupt``: the run was
started with ``handle_sigint=False``, as the coordinator notebook does) or Ctrl-C on
``cvagents run`` marks the session "stopped", never leaves it "running" (which monitors call a
disconnect), and says so in one line, with no traceback."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from resume_helpers import records

CELL = """
import sys
from cvagents.runner import run_system
print(run_system(sys.argv[1], provider="offline", time_scale=1, handle_sigint=False, session_id="20250101_000000_00000a"))
"""


def _after_first_heartbeat(p, ws):
    deadline = time.time() + 240
    log = ws / "executive.log"
    while time.time() < deadline and p.poll() is None and not (log.exists() and "HEARTBEAT" in log.read_text()):
        time.sleep(0.2)
    assert p.poll() is None, p.communicate()


def test_a_cell_interrupt_marks_the_session_stopped_in_one_line(seeded_workspace):
    ws = seeded_workspace
    p = subprocess.Popen(
        [sys.executable, "-c", CELL, str(ws)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _after_first_heartbeat(p, ws)
    p.send_signal(signal.SIGINT)  # the kernel's interrupt: KeyboardInterrupt wherever the cell is
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-3000:]
    assert "Traceback" not in err + out and "KeyboardInterrupt" not in err + out
    said = [line for line in (out + err).splitlines() if "⏹" in line]
    assert len(said) == 1 and "Interrupted: session 20250101_000000_00000a is marked stopped" in said[0], out + err
    assert "'status': 'stopped'" in out.strip().splitlines()[-1]
    session = json.loads((ws / "sessions" / "session_20250101_000000_00000a" / "session.json").read_text())
    assert session["status"] == "stopped"
    last = records(ws, "20250101_000000_00000a")[-1]
    assert last.kind == "session_finished" and last.data["status"] == "stopped" and last.data["interrupted"]


def test_ctrl_c_on_cvagents_run_stops_it_in_one_line(seeded_workspace):
    ws = seeded_workspace
    p = subprocess.Popen(
        [sys.executable, "-m", "cvagents", "run", "--provider", "offline", "--workspace", str(ws), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _after_first_heartbeat(p, ws)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=300)
    assert "Traceback" not in err + out
    assert len([line for line in (out + err).splitlines() if "⏹" in line]) == 1, out + err
    assert json.loads(out)["status"] == "stopped" and p.returncode == 130
    session = json.loads(next((ws / "sessions").glob("session_*/session.json")).read_text())
    assert session["status"] == "stopped"
