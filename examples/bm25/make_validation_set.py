"""A small validation set for the BM25 example, in cvagents' documented format, made from a seed.

The corpus is an operations knowledge base: one short note for each of 40 pieces of software and
8 tasks (backup, snapshots, replication, ...), 320 notes, written from templates. Each query asks
for one task on one piece of software, in words a user would type, which are not always the
words of the notes (no stemming: "backups" is not "backup"; "https" is not "tls"). Judgments:

- 3: the note on that task for that software;
- 2: the note on the neighbouring task (backup ~ snapshot, replication ~ scaling, ...);
- 1: the other notes on the same software;
- 0 (judged not relevant): two notes on the same task for other software.

No download: everything is made here, the same files for the same seed.

    python -m examples.bm25.make_validation_set FOLDER [--seed 0] [--queries 120]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

NAME = "bm25-ops-notes"
SOFTWARE = (
    "postgres redis kafka nginx kubernetes terraform grafana prometheus elasticsearch rabbitmq mongodb cassandra "
    "airflow spark jenkins docker consul vault etcd haproxy mysql sqlite clickhouse memcached zookeeper celery "
    "flink hadoop minio traefik envoy istio linkerd fluentd logstash kibana jaeger ceph gitlab ansible"
).split()
# task: (words its notes use, what users type for it); the tasks come in neighbouring pairs
TASKS = {
    "backup": ("backup restore archive", ["backup", "restore a backup", "archive old data", "nightly backups"]),
    "snapshot": (
        "snapshot restore volume",
        ["volume snapshot", "snapshot", "restore a snapshot", "point in time copy"],
    ),
    "replication": (
        "replication failover cluster",
        ["replication", "failover", "cluster failover", "high availability"],
    ),
    "scaling": ("scaling nodes cluster", ["add nodes", "scaling the cluster", "more nodes", "scale out"]),
    "monitoring": ("metrics dashboard alerts", ["metrics dashboard", "metrics", "dashboard alerts", "what to graph"]),
    "logging": ("logs rotation alerts", ["logs rotation", "logs", "alerts on logs", "log rotation"]),
    "security": ("tls certificates authentication", ["tls certificates", "tls", "certificates", "https setup"]),
    "access": ("users roles authentication", ["users and roles", "roles", "users authentication", "who can log in"]),
}
NEIGHBOUR = {a: b for pair in zip(list(TASKS)[::2], list(TASKS)[1::2]) for a, b in (pair, pair[::-1])}
TEMPLATES = [
    "{s}: {w0} and {w1}. {f} Covers {w2} too.",
    "How we handle {w0} for {s} ({w1}, {w2}). {f}",
    "{s} runbook, {w0}: {f} See also {w1} and {w2}.",
    "Notes on {s} {w0}. {f} Mind the {w2} and {w1} settings.",
]
FILLER = [
    "Run it from the ops host and check the config first.",
    "Works the same in staging and production.",
    "Ask on the team channel before changing defaults.",
    "The defaults are fine for small installs.",
    "Automate it with the usual scheduled job.",
    "Test it after every upgrade.",
]


def _note(rng: random.Random, software: str, task: str) -> str:
    words = TASKS[task][0].split()
    rng.shuffle(words)
    w = dict(zip(("w0", "w1", "w2"), words))
    related = rng.choice(TASKS[NEIGHBOUR[task]][0].split())  # notes link to the neighbouring task
    return rng.choice(TEMPLATES).format(s=software.capitalize(), f=rng.choice(FILLER), **w) + f" Related: {related}."


def build(seed: int = 0, queries: int = 120) -> tuple[list[dict], list[dict], dict[str, dict[str, int]]]:
    """(corpus, queries, qrels) for ``seed``."""
    rng = random.Random(seed)
    pairs = [(s, t) for s in SOFTWARE for t in TASKS]
    rng.shuffle(pairs)  # ids say nothing about the topic
    doc_id = {p: f"doc{i:04d}" for i, p in enumerate(pairs)}
    corpus = [{"id": doc_id[p], "text": _note(rng, *p)} for p in pairs]
    asked = rng.sample(pairs, queries)
    qs, qrels = [], {}
    for n, (software, task) in enumerate(asked, 1):
        qid = f"q{n:03d}"
        qs.append({"id": qid, "text": f"{software} {rng.choice(TASKS[task][1])}"})
        judged = {doc_id[(software, t)]: 1 for t in TASKS}
        judged[doc_id[(software, NEIGHBOUR[task])]] = 2
        judged[doc_id[(software, task)]] = 3
        for other in rng.sample([s for s in SOFTWARE if s != software], 2):
            judged[doc_id[(other, task)]] = 0
        qrels[qid] = dict(sorted(judged.items(), key=lambda j: (-j[1], j[0])))
    return corpus, qs, qrels


def write(folder: str | Path, seed: int = 0, queries: int = 120) -> Path:
    """Write the set into ``folder``; dataset_info.json last, as its presence marks the set complete."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    corpus, qs, qrels = build(seed, queries)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus), encoding="utf-8")
    (folder / "queries.json").write_text(json.dumps(qs, indent=1), encoding="utf-8")
    (folder / "qrels.json").write_text(json.dumps(qrels, indent=1), encoding="utf-8")
    info = {
        "name": NAME,
        "version": "1",
        "seed": seed,
        "documents": len(corpus),
        "queries": len(qs),
        "grades": {"3": "the answer", "2": "the neighbouring task", "1": "same software", "0": "judged not relevant"},
        "made_by": "examples/bm25/make_validation_set.py",
    }
    (folder / "dataset_info.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    return folder


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--queries", type=int, default=120)
    a = ap.parse_args(argv)
    print(write(a.folder, a.seed, a.queries))


if __name__ == "__main__":
    main()
