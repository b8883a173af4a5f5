"""A submitted candidate enters the journal once, like an approval; the guide's own model file keeps
its implicit name; what the checks refuse leaves the registry as it was. Toy models
(tests/toy_models.py), in process."""

from __future__ import annotations

import pytest
from toy_models import SPEC, write_collection, write_toy

from cvagents.config import CoordinationConfig
from cvagents.durability.hashing import sha256_file
from cvagents.models import registry
from cvagents.models.adapter import AdapterError
from cvagents.models.train import DemoSetError
from cvagents.rollout import decisions, lifecycle
from cvagents.rollout.controller import Controller
from cvagents.rollout.submission import SubmissionError, submit_candidate, submit_demo
from cvagents.workspace import Workspace


@pytest.fixture
def ws(tmp_path) -> Workspace:
    w = Workspace.from_config(tmp_path / "ws", CoordinationConfig()).create()
    write_collection(w.validation_dir)
    write_toy(w.research_dir / "m.json")
    return w


def submitted(records: list[tuple[str, dict]]) -> list[dict]:
    return [d for kind, d in records if kind == decisions.JOURNAL_KIND and d["kind"] == "submitted"]


def test_a_submission_is_journaled_once_and_resume_does_not_repeat_it(ws):
    cfg = ws.config
    entry = submit_candidate(ws, cfg, str(ws.research_dir / "m.json"), adapter=SPEC, by="alice", now="t0")
    journal: list[tuple[str, dict]] = []
    record = lambda kind, data: journal.append((kind, data))  # noqa: E731 - the run's journal, as a list

    Controller(ws, cfg, record).review("t1")
    (d,) = submitted(journal)
    assert d["outcome"] == "submitted" and d["name"] == "m" and d["sha256"] == entry["sha256"]
    assert d["path"] == "research/m.json" and d["adapter"] == SPEC
    assert d["candidate"]["source"] == {"kind": "file", "uri": "research/m.json"}
    assert d["reason"] == "candidate m submitted by alice at t0"
    assert [x["id"] for x in decisions.read(ws) if x["kind"] == "submitted"] == [d["id"]]

    Controller(ws, cfg, record).review("t2")  # the next heartbeat: nothing new
    assert len(submitted(journal)) == 1
    ws.controller_file.unlink()  # killed after the decision's line, before controller.json
    Controller(ws, cfg, record).review("t3")
    assert len(submitted(journal)) == 1
    assert len([x for x in decisions.read(ws) if x["kind"] == "submitted"]) == 1

    write_toy(ws.research_dir / "n.json", quality="good")
    submit_candidate(ws, cfg, str(ws.research_dir / "n.json"), adapter=SPEC, by="bob", now="t4")
    Controller(ws, cfg, record).review("t5")
    assert [x["name"] for x in submitted(journal)] == ["m", "n"]


def test_the_guides_model_file_keeps_its_implicit_name(ws):
    write_toy(ws.model_file)  # research/v1_production.pth, not submitted: the implicit v1
    write_toy(ws.research_dir / "m.json", quality="good")
    (implicit,) = [c for c in lifecycle.candidates(ws, ws.config) if c.get("implicit")]
    e = submit_candidate(ws, ws.config, str(ws.model_file), adapter=SPEC)
    assert e["name"] == lifecycle.IMPLICIT_NAME == implicit["name"] and e["sha256"] == implicit["sha256"]
    assert [c["name"] for c in lifecycle.candidates(ws, ws.config)] == ["v1"]  # one v1, now registered


def test_another_model_cannot_take_the_implicit_name(ws):
    write_toy(ws.model_file, quality="good")  # another model than research/m.json
    with pytest.raises(registry.RegistryError, match=r"^v1: .*--name"):
        submit_candidate(ws, ws.config, str(ws.research_dir / "m.json"), name="v1", adapter=SPEC)
    assert registry.entries(ws) == []


def test_a_bad_name_is_refused_before_anything_is_registered(ws):
    with pytest.raises(registry.RegistryError, match=r"^--name: "):
        submit_candidate(ws, ws.config, str(ws.research_dir / "m.json"), name="../evil", adapter=SPEC)
    assert registry.entries(ws) == []


def test_an_answer_of_the_wrong_shape_is_refused(ws, tmp_path, monkeypatch):
    (tmp_path / "flat_adapter.py").write_text(
        "class A:\n    def query(self, texts, k):\n        return ['d0001', 'd0002']\n"
        "def load(artifact, validation_set):\n    return A()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        AdapterError,
        match=r"^adapter flat_adapter:load: query\(texts, k\) answered wrongly: expected a list of 1 ranked lists",
    ):
        submit_candidate(ws, ws.config, str(ws.research_dir / "m.json"), adapter="flat_adapter:load")
    assert registry.entries(ws) == []


def test_the_source_records_the_path_relative_to_the_workspace(ws):
    e = submit_candidate(ws, ws.config, str(ws.research_dir / "m.json"), adapter=SPEC, now="t")
    assert e["source"] == {"kind": "file", "uri": "research/m.json"} and e["time"] == "t"
    assert e["sha256"] == sha256_file(ws.research_dir / "m.json")


def test_demo_refuses_a_validation_set_that_is_not_the_demos(ws):
    before = sorted(p.name for p in ws.validation_dir.iterdir())
    with pytest.raises(DemoSetError, match=r"validation_set: not the demo's validation set"):
        submit_demo(ws, ws.config)
    assert sorted(p.name for p in ws.validation_dir.iterdir()) == before  # not overwritten
    assert not (ws.research_dir / "v2_degraded.pth").exists() and registry.entries(ws) == []


def test_demo_refuses_an_unknown_variant(ws):
    with pytest.raises(SubmissionError, match=r"^--demo: unknown demo model 'better'"):
        submit_demo(ws, ws.config, "better")


def test_a_run_journals_a_submission_once_across_a_crash_and_resume(tmp_path):
    """A real (in-process, offline) run: the submission is in the session journal and in
    decisions.jsonl once, though the run was killed mid-meeting and resumed."""
    from resume_helpers import records, run, seed, settings

    root = seed(tmp_path / "ws")
    write_collection(root / "data" / "validation_set")
    write_toy(root / "research" / "m.json")
    w = Workspace.from_config(root, settings().coordination)
    entry = submit_candidate(w, w.config, str(w.research_dir / "m.json"), adapter=SPEC, by="alice")

    def journaled():
        return [r.data for r in records(root) if r.kind == decisions.JOURNAL_KIND and r.data["kind"] == "submitted"]

    result, _ = run(root, 2, crash_at=20)  # in the second meeting, after the first heartbeats
    assert result is None  # killed
    (d,) = journaled()
    assert d["sha256"] == entry["sha256"] and d["name"] == "m"
    result, _ = run(root, 2)
    assert result is not None
    assert len(journaled()) == 1
    assert [x["id"] for x in decisions.read(w) if x["kind"] == "submitted"] == [d["id"]]
