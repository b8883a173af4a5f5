"""Progress of the long steps (training, evaluation, traffic replay): a bar on stderr when it is a
terminal, nothing when it is not, never anything on stdout."""

from __future__ import annotations

import io

from toy_models import write_collection, write_toy

from cvagents.models.compute import LocalEngine
from cvagents.models.evaluate import evaluate_model
from cvagents.models.progress import progress
from cvagents.models.train import train
from cvagents.rollout import traffic


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Fixed:
    def query(self, texts, k):
        return [[f"d{i}" for i in range(k)] for _ in texts]


def term(monkeypatch) -> Terminal:
    """stderr as a terminal (in the test body: pytest's capture replaces sys.stderr again after
    the fixtures are set up)."""
    err = Terminal()
    monkeypatch.setattr("sys.stderr", err)
    return err


def test_a_bar_on_a_terminal_s_stderr_and_the_items_unchanged(monkeypatch, capsys):
    terminal = term(monkeypatch)
    assert list(progress(range(5), "counting", unit="n")) == [0, 1, 2, 3, 4]
    assert "counting" in terminal.getvalue() and "0/5" in terminal.getvalue()
    assert capsys.readouterr().out == ""


def test_nothing_when_stderr_is_not_a_terminal(monkeypatch, capsys):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    assert list(progress(iter("abc"), "letters", total=3)) == ["a", "b", "c"]
    assert err.getvalue() == "" and capsys.readouterr().out == ""


def test_training_shows_its_steps(monkeypatch, capsys):
    terminal = term(monkeypatch)
    train("degraded", steps=3)
    assert "training degraded" in terminal.getvalue() and "0/3" in terminal.getvalue()
    assert capsys.readouterr().out == ""


def test_evaluation_shows_its_shards(monkeypatch, capsys, tmp_path):
    terminal = term(monkeypatch)
    vset = write_collection(tmp_path / "vs", queries=12)
    model = write_toy(tmp_path / "m.json")
    evaluate_model(model, vset, adapter="toy_models:load", bootstrap_samples=10, warmup=1, engine=LocalEngine(4))
    assert "evaluation: shards" in terminal.getvalue() and "0/3" in terminal.getvalue()
    assert capsys.readouterr().out == ""


def test_traffic_replay_shows_its_shards(monkeypatch, capsys):
    terminal = term(monkeypatch)
    texts = [f"q{i}" for i in range(10)]
    res = traffic.replay(
        Fixed(), Fixed(), texts, weight=0.2, requests=40, slo_ms=50.0, p0_error_rate=0.5, shard_size=10
    )
    assert res["requests"] == 40 and res["candidate_requests"] + res["production_requests"] == 40
    assert "traffic replay: 20% to the candidate" in terminal.getvalue() and "0/4" in terminal.getvalue()
    assert capsys.readouterr().out == ""
