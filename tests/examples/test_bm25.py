"""The BM25 example (examples/bm25): a model none of us wrote, behind the documented adapter, with
its own validation set and its broken twin. The rollout itself is in test_bm25_rollout.py."""

import json
import re
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `examples` is importable from the repo root, as its README says
pytest.importorskip("rank_bm25", reason="needs the examples extra (rank-bm25): pip install -e '.[examples]'")

from cvagents.models import collection  # noqa: E402
from cvagents.models.adapter import AdapterError, close_adapter, load_factory, open_adapter  # noqa: E402
from cvagents.models.metrics import ndcg_at_k  # noqa: E402
from examples.bm25 import broken, make_validation_set, setup_workspace  # noqa: E402

BM25 = "examples.bm25.adapter:load"
BROKEN = "examples.bm25.broken:load"


@pytest.fixture(scope="module")
def laid_out(tmp_path_factory):
    return setup_workspace.setup(tmp_path_factory.mktemp("bm25") / "ws")


def corpus_ids(vdir: Path) -> list[str]:
    return [json.loads(line)["id"] for line in (vdir / "corpus.jsonl").read_text().splitlines()]


def ndcg10(ranked: list[list[str]], c: collection.Collection, ids: list[str]) -> float:
    """NDCG@10 of ranked id lists, through the project's metric (exponential gain, as the gate)."""
    col = {d: i for i, d in enumerate(ids)}
    scores, rel = torch.zeros(len(ranked), len(ids)), torch.zeros(len(ranked), len(ids))
    for qi, (qid, docs) in enumerate(zip(c.ids, ranked)):
        for pos, d in enumerate(docs):
            scores[qi, col[d]] = len(docs) - pos  # best first: highest score
        for d, grade in c.qrels.get(qid, {}).items():
            rel[qi, col[d]] = grade
    return ndcg_at_k(scores, rel, k=10)


def answers(spec, artifact, vdir, texts, k=10):
    a = open_adapter(spec, artifact, vdir)
    try:
        return a.query(texts, k)
    finally:
        close_adapter(a)


def test_the_validation_set_is_in_the_documented_format_and_made_from_its_seed(laid_out, tmp_path):
    vdir = laid_out["validation_set"]
    c = collection.load(vdir)
    ids = set(corpus_ids(vdir))
    assert len(ids) == 320 and len(c.queries) == 120 and c.info["name"] == make_validation_set.NAME
    grades = [g for judged in c.qrels.values() for g in judged.values()]
    assert set(grades) == {0, 1, 2, 3}  # graded, with explicit "judged not relevant"
    assert all(d in ids for judged in c.qrels.values() for d in judged)
    assert all(sum(g == 3 for g in judged.values()) == 1 for judged in c.qrels.values())
    again = make_validation_set.write(tmp_path / "again", seed=0)
    other = make_validation_set.write(tmp_path / "other", seed=1)
    for name in ("corpus.jsonl", "queries.json", "qrels.json", "dataset_info.json"):
        assert (again / name).read_bytes() == (vdir / name).read_bytes()
    assert (other / "queries.json").read_bytes() != (vdir / "queries.json").read_bytes()


def test_the_adapter_honours_the_contract(laid_out):
    vdir, art = laid_out["validation_set"], laid_out["bm25_v1"]
    texts = collection.load(vdir).texts[:25]
    ids = set(corpus_ids(vdir))
    a = open_adapter(BM25, art, vdir)
    batched = a.query(texts, 10)
    assert isinstance(batched, list) and len(batched) == len(texts)
    for top in batched:
        assert isinstance(top, list) and len(top) == 10 and len(set(top)) == 10 and set(top) <= ids
    assert batched == [a.query([t], 10)[0] for t in texts]  # a batch answers as one query at a time
    assert [top[:3] for top in batched] == a.query(texts, 3)  # top-3 is the head of top-10
    assert sorted(a.query(texts[:1], 1000)[0]) == sorted(ids)  # k past the corpus: every document once
    assert a.query([], 10) == []
    close_adapter(a)


def test_bm25_ranks_well_and_its_random_twin_badly(laid_out):
    vdir = laid_out["validation_set"]
    c, ids = collection.load(vdir), corpus_ids(vdir)
    good = ndcg10(answers(BM25, laid_out["bm25_v1"], vdir, c.texts), c, ids)
    rand = ndcg10(answers(BROKEN, laid_out["bm25_random"], vdir, c.texts), c, ids)
    assert good >= 0.85, good  # measured 0.907: well above the 0.72 gate
    assert rand <= 0.1, rand  # measured 0.02


def test_the_slow_twin_answers_as_bm25_but_sleeps_per_query(laid_out, monkeypatch):
    vdir = laid_out["validation_set"]
    texts = collection.load(vdir).texts[:7]
    slept: list[float] = []
    monkeypatch.setattr(broken.time, "sleep", slept.append)
    assert answers(BROKEN, laid_out["bm25_slow"], vdir, texts) == answers(BM25, laid_out["bm25_v1"], vdir, texts)
    assert slept == [broken.SLOW_MS / 1000] * len(texts)  # past the 50 ms latency gate, every query


@pytest.mark.parametrize(
    "artifact, expected",
    [
        ({"kind": "toy"}, "not a BM25 artifact"),
        ({"kind": "bm25", "b": 2}, "expected k1 >= 0 and 0 <= b <= 1"),
        ({"kind": "bm25", "tokenizer": "porter"}, "unknown tokenizer 'porter'"),
        ({"kind": "bm25", "k_1": 1.5}, "unknown keys ['k_1']"),
    ],
)
def test_a_bad_artifact_fails_to_load_naming_the_file(laid_out, tmp_path, artifact, expected):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(artifact))
    with pytest.raises(AdapterError) as e:
        open_adapter(BM25, bad, laid_out["validation_set"])
    msg = str(e.value)
    assert "\n" not in msg and f"{bad}: " in msg and expected in msg


def test_a_validation_set_without_a_corpus_fails_to_load_naming_it(laid_out, tmp_path):
    with pytest.raises(AdapterError) as e:
        open_adapter(BM25, laid_out["bm25_v1"], tmp_path)
    assert str(tmp_path / "corpus.jsonl") in str(e.value)


def test_setup_leaves_another_validation_set_alone(tmp_path, capsys):
    info = tmp_path / "ws" / "data" / "validation_set" / "dataset_info.json"
    info.parent.mkdir(parents=True)
    info.write_text(json.dumps({"name": "demo"}))
    with pytest.raises(SystemExit) as e:
        setup_workspace.main([str(tmp_path / "ws")])
    assert str(e.value) == f"error: {info.parent}: holds another validation set; use a fresh workspace"
    assert sorted(p.name for p in info.parent.iterdir()) == ["dataset_info.json"]
    assert not (tmp_path / "ws" / "research").exists()


def test_every_adapter_the_readme_names_imports():
    text = (ROOT / "examples" / "bm25" / "README.md").read_text()
    specs = set(re.findall(r"--adapter (\S+:\w+)", text))
    assert specs == {BM25, BROKEN}
    for spec in specs:
        assert callable(load_factory(spec))
