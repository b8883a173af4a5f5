"""The recorder on its own: every tool call journaled, replayed and repaired the same way, through
the tool's own hooks. A tool defined here, in one place, gets all of it."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from cvagents.execution.tools import Tool, ToolContext, ToolOutcome, ToolRegistry, ToolStatus
from cvagents.llm.base import LLMResult, ToolCall, Usage
from cvagents.run.recorder import Recorder
from cvagents.run.recovery import ActionReplay


class BumpArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: int = 1


class Counter:
    """A side effect in a file: a counter bumped once per action (idempotent on the action id)."""

    def __init__(self, folder: Path):
        self.file = folder / "counter.json"
        self.runs = 0
        self.repairs: list[tuple[dict, dict]] = []

    def read(self) -> dict[str, Any]:
        return json.loads(self.file.read_text()) if self.file.exists() else {"value": 0, "by_action": {}}

    def bump(self, ctx: ToolContext, args: BumpArgs) -> dict[str, Any]:
        self.runs += 1
        c = self.read()
        if ctx.action_key in c["by_action"]:
            return {"value": c["value"], "already_done": True}
        c["value"] += args.by
        c["by_action"][ctx.action_key] = args.by
        self.file.write_text(json.dumps(c))
        return {"value": c["value"], "z_unsorted": ("a", "tuple"), "a_path": Path("x/y")}

    def before(self, ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
        return {"value": self.read()["value"]}

    def repair(self, ctx: ToolContext, args: dict[str, Any], before: dict[str, Any]) -> str:
        self.repairs.append((args, before))
        return f"counter at {self.read()['value']}, was {before['value']}"

    def recovered(self, ctx: ToolContext, outcome: ToolOutcome, before: dict[str, Any]) -> ToolOutcome:
        return ToolOutcome(
            outcome.tool, outcome.arguments, outcome.status, {**outcome.result, "was": before["value"]}, 0.0
        )

    def tool(self) -> Tool:
        return Tool(
            "bump",
            "Bump the counter.",
            BumpArgs,
            self.bump,
            side_effect=True,
            before=self.before,
            repair=self.repair,
            recovered=self.recovered,
        )


@pytest.fixture
def counter(tmp_path):
    return Counter(tmp_path)


@pytest.fixture
def journal():
    """The records as the journal would hold them (through JSON)."""
    recs: list[tuple[str, dict]] = []

    def record(kind: str, data: dict) -> dict:
        recs.append((kind, json.loads(json.dumps(data, sort_keys=True))))
        return data

    record.recs = recs  # type: ignore[attr-defined]
    return record


@pytest.fixture
def ctx(tmp_path):
    return ToolContext(tmp_path, None, action_key="m#1", agent="ops_commander")


def recorder(counter, journal):
    return Recorder(ToolRegistry([counter.tool()]), journal)


def test_a_call_is_journaled_as_started_with_the_world_before_then_as_finished(counter, journal, ctx):
    out = recorder(counter, journal).action("m#1").call(ctx, "bump", {"by": 2})
    assert out.status == ToolStatus.SUCCEEDED and out.result["value"] == 2 and not out.replayed
    (k1, started), (k2, done) = journal.recs
    assert (k1, k2) == ("tool_started", "tool_call")
    assert started == {"action_id": "m#1", "index": 0, "tool": "bump", "arguments": {"by": 2}, "world": {"value": 0}}
    assert done["agent"] == "ops_commander" and done["status"] == "succeeded" and done["result"] == out.result
    # the result as the journal holds it: JSON, so a replay reads the same
    assert out.result == {"a_path": "x/y", "value": 2, "z_unsorted": ["a", "tuple"]}
    assert list(out.result) == sorted(out.result)


def test_an_unknown_tool_is_journaled_and_fails_for_the_model_to_fix(counter, journal, ctx):
    out = recorder(counter, journal).action("m#1").call(ctx, "rm_rf", {"path": "/"})
    assert out.status == ToolStatus.FAILED and "unknown tool" in out.result["error"]
    assert [k for k, _ in journal.recs] == ["tool_started", "tool_call"] and journal.recs[0][1]["world"] == {}


def test_a_replayed_action_answers_from_the_journal_without_running_the_tool(counter, journal, ctx):
    first = recorder(counter, journal).action("m#1").call(ctx, "bump", {"by": 2})
    started, done = (d for _, d in journal.recs)
    journal.recs.clear()
    replay = ActionReplay("m#1", {}, tools_started=[started], tools_done=[done])
    again = recorder(counter, journal).action("m#1", replay).call(ctx, "bump", {"by": 2})
    assert again.replayed and again.result == first.result and again.status == ToolStatus.SUCCEEDED
    assert counter.runs == 1 and journal.recs == []  # neither run nor journaled again


def test_a_call_cut_off_by_a_crash_is_repaired_rerun_and_answered_as_the_first(counter, journal, ctx):
    recorder(counter, journal).action("m#1").call(ctx, "bump", {"by": 2})
    started = journal.recs[0][1]  # the kill came before tool_call was journaled
    journal.recs.clear()
    replay = ActionReplay("m#1", {}, tools_started=[started])
    out = recorder(counter, journal).action("m#1", replay).call(ctx, "bump", {"by": 2})
    assert counter.repairs == [({"by": 2}, {"value": 0})]  # the tool checked the world it had journaled
    assert [k for k, _ in journal.recs] == ["tool_recovered", "tool_call"]
    assert journal.recs[0][1]["found"] == "counter at 2, was 0"
    assert out.result == {"value": 2, "was": 0}  # already_done dropped, answered through the tool's hook
    assert counter.read()["value"] == 2


def test_work_found_done_on_the_first_call_is_answered_as_the_call_that_did_it(counter, journal, ctx):
    counter.bump(ctx, BumpArgs(by=3))  # done in the world before the journal knew (a lagging mirror)
    out = recorder(counter, journal).action("m#1").call(ctx, "bump", {"by": 3})
    assert out.result == {"value": 3, "was": 3}
    second = recorder(counter, journal).action("m#1")
    second.call(ctx, "bump", {"by": 3})
    assert second.call(ctx, "bump", {"by": 3}).result == {"value": 3, "already_done": True}  # a repeat in the action


def test_a_replay_that_diverges_runs_for_real(counter, journal, ctx, caplog):
    recorder(counter, journal).action("m#1").call(ctx, "bump", {"by": 2})
    started, done = (d for _, d in journal.recs)
    journal.recs.clear()
    replay = ActionReplay("m#1", {}, tools_started=[started], tools_done=[done])
    with caplog.at_level(logging.WARNING, logger="cvagents.run"):
        out = recorder(counter, journal).action("m#1", replay).call(ctx, "bump", {"by": 5})
    assert "diverged" in caplog.text and not out.replayed and counter.runs == 2
    assert [k for k, _ in journal.recs] == ["tool_started", "tool_call"]


def test_replay_state_belongs_to_its_action(counter, journal, ctx):
    recorder(counter, journal).action("m#1").call(ctx, "bump", {"by": 2})
    started, done = (d for _, d in journal.recs)
    rec = recorder(counter, journal)
    replaying = rec.action("m#1", ActionReplay("m#1", {}, tools_started=[started], tools_done=[done]))
    other = rec.action("m#2")
    assert replaying.call(ctx, "bump", {"by": 2}).replayed
    assert not other.call(ToolContext(ctx.workspace, None, action_key="m#2"), "bump", {"by": 2}).replayed


def test_journaled_answers_are_given_back_once():
    answer = LLMResult("", (ToolCall("c0", "bump", {"by": 2}),), Usage(3, 4), "m", "p", 0.1, "tool_use")
    replay = ActionReplay("m#1", {})
    replay.responses.add(("ops_commander", 0, "h"), answer.as_dict())
    rec = Recorder(ToolRegistry([]), lambda kind, data: data).action("m#1", replay)
    assert rec.response("ops_commander", 0, "h") == answer
    assert rec.response("ops_commander", 0, "h") is None  # each journaled answer is used once
    assert Recorder(ToolRegistry([]), lambda kind, data: data).action("m#1").response("ops_commander", 0, "h") is None
