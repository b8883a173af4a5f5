"""The run's log lines pass the secrets redaction: a key never reaches executive.log or the console."""

from __future__ import annotations

import logging

import pytest
from resume_helpers import START, Scripted, seed, settings

from cvagents.clock import ManualClock
from cvagents.planning.team import build_teams
from cvagents.run.coordinator import Coordinator, RunOptions
from cvagents.secrets import REDACTED, forget_secrets, register_secret

SECRET = "hunter2-correct-horse-battery"  # not shaped like a key: only registering it hides it


@pytest.fixture
def secret():
    register_secret(SECRET)
    yield SECRET
    forget_secrets()


def test_a_registered_secret_logged_during_a_run_never_reaches_the_log(tmp_path, capsys, secret):
    ws = seed(tmp_path / "ws")
    # An agent names the secret in a tool call: the executive and the tool log it.
    plan = [(f"Check that the essential files exist (research/{secret}.pth).", "infra_guardian", "low")]
    s = settings()
    c = Coordinator(
        s,
        ws,
        RunOptions(meetings=1, console=True, session_id="t"),
        build_teams(s, lambda name, cfg: Scripted(plan)),
        clock=ManualClock(START),
    )
    c.on_step = lambda step, rec: logging.getLogger("cvagents.run").info("after the %s: token=%s", step, secret)
    try:
        assert c.run()["status"] == "finished"
    finally:
        c.close()
    log = c.ws.log_file.read_text(encoding="utf-8")
    console = capsys.readouterr().out
    for text in (log, console):
        assert "[TOOL] check_files" in text and "after the meeting" in text  # the lines are there ...
        assert secret not in text and REDACTED in text  # ... with the secret masked


def test_the_handlers_go_when_the_run_closes(tmp_path):
    s = settings()
    before = list(logging.getLogger("cvagents").handlers)
    c = Coordinator(s, seed(tmp_path / "ws"), RunOptions(meetings=0, console=False), clock=ManualClock(START))
    assert len(logging.getLogger("cvagents").handlers) == len(before) + 1
    c.close()
    assert logging.getLogger("cvagents").handlers == before
