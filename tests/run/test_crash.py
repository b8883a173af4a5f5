"""kill -9 the coordinator at injected points, resume, and compare with a run that never crashed.

Each case runs ``cvagents run`` (one meeting and its heartbeats, or two; offline, on the manual clock) in a subprocess
with ``CVAGENTS_CRASH_AT=<point>``: the process SIGKILLs itself there, before or after a side
effect, half way through a journal record, between writing the handoff's temp file and renaming
it, in the middle of a meeting. The same command without the variable then resumes it. After
that: every deployment happened once, every meeting was held once, no agent response was
requested twice, the journal opens cleanly, the handoff is valid JSON, and the reports (as the
resumed run wrote them, and as ``cvagents rebuild-reports`` writes them from the journal alone)
equal those of the crash-free run.

Runs are deterministic: manual clock, fixed start time and session id, the offline provider,
and ``tests/det_run.py`` pins the only wall-clock measurements (durations, latencies).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from cvagents.durability.journal import Journal
from cvagents.planning.handoff import read_handoff

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = Path(__file__).resolve().parents[1] / "det_run.py"
SESSION = "20250101_000000_c4a5e0"  # fixed, in the format the CLI accepts

POINTS = [
    "after:session_started",  # before anything was done
    "after:meeting_started",  # a meeting journaled as started, no agent asked yet
    "after:agent_response:3",  # mid-meeting: three agents have answered
    "torn:agent_response:5",  # mid journal write, mid-meeting
    "before:meeting_completed",  # every agent answered, the meeting not yet journaled
    "torn:meeting_completed",  # the meeting's record torn
    "atomic:pending_actions.json",  # the handoff's temp file written, not renamed
    "meeting:after_reports",  # reports written, checkpoint not
    "torn:checkpoint",  # the checkpoint torn
    "after:action_started",  # an action started, its owner not yet asked
    "tool_before:deploy_model",  # the deploy journaled as started, nothing copied
    "deploy:partial_copy",  # the artifact half copied (.partial)
    "deploy:after_copy",  # copied and verified, no version.json
    "deploy:before_pointer",  # version.json written, the live pointer not swapped
    "tool_after:deploy_model",  # deployed and recorded, the result not journaled
    "torn:tool_call",  # the deploy's result torn in the journal
    "tool_after:run_evaluation",  # evaluation record written, result not journaled
    "after:tool_call:2",  # evaluation journaled, the owner not asked again
    "tool_after:replay_traffic",  # traffic replayed and recorded, result not journaled
    "drill:rolled_back",  # mid-drill: the pointer swapped to the previous version
    "tool_after:run_rollback_drill",  # drill recorded, result not journaled
    "tool_after:collect_metrics",  # metrics merged, result not journaled
    "before:action_finished",  # every tool done, the action not finished
    "atomic:metrics.json",  # metrics.json's temp file written, not renamed
    "after:metrics_collecting",  # the heartbeat's metrics merge about to run
    "torn:heartbeat_completed",  # the heartbeat's record torn
    "heartbeat:after_reports",  # execution report written, checkpoint not
    "before:timing_changed",  # adaptive timing decided, not journaled
    "after:meeting_started:2",  # (two meetings) the second meeting started
    "deploy:before_pointer:2",  # (two meetings) the promotion to the next stage, pointer not swapped
]
TWO_MEETINGS = {"after:meeting_started:2", "deploy:before_pointer:2"}  # the rest: one meeting and its heartbeats


def _args(project: Path, ws: Path, meetings: int) -> list[str]:
    return [
        "run",
        "--project-root",
        str(project),
        "--provider",
        "offline",
        "--meetings",
        str(meetings),
        "--manual-clock",
        "--start-time",
        "2025-01-01T00:00:00",
        "--session-id",
        SESSION,
        "--quiet",
        "--json",
        "--workspace",
        str(ws),
    ]


class ForkServer:
    """``tests/det_run.py --serve``: runs each command in a fresh forked process (torch already
    imported), so a case does not pay for a torch import twice."""

    def __init__(self):
        self.p = subprocess.Popen(
            [sys.executable, str(LAUNCHER), "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def run(self, args: list[str], env: dict, out: Path) -> subprocess.CompletedProcess:
        self.p.stdin.write(json.dumps({"args": args, "env": env, "out": str(out)}) + "\n")
        self.p.stdin.flush()
        rc = json.loads(self.p.stdout.readline())["rc"]
        read = lambda suffix: Path(f"{out}.{suffix}").read_text(errors="replace")  # noqa: E731
        return subprocess.CompletedProcess(args, rc, read("out"), read("err"))

    def close(self) -> None:
        self.p.stdin.close()
        self.p.wait(timeout=60)


_servers = threading.local()


def _run(project: Path, ws: Path, meetings: int, crash: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CVAGENTS_CRASH_AT"}
    if crash:
        env["CVAGENTS_CRASH_AT"] = crash
    server = getattr(_servers, "server", None)
    if server is None:
        server = _servers.server = ForkServer()
        _all_servers.append(server)
    out = ws.parent / ("crash" if crash else f"run{len(list(ws.parent.glob('run*.out')))}")
    return server.run(_args(project, ws, meetings), env, out)


_all_servers: list[ForkServer] = []


def _seed(ws: Path, artifacts: Path) -> Path:
    ws.mkdir(parents=True)
    for sub in ("research", "data"):
        shutil.copytree(artifacts / sub, ws / sub)
    return ws


def _project(dst: Path) -> Path:
    """configs/ and prompts/ with a lighter traffic replay and bootstrap (same rollout shape)."""
    for d in ("configs", "prompts", "reports"):
        shutil.copytree(ROOT / d, dst / d)
    p = dst / "configs" / "autonomous_coordination.yaml"
    c = yaml.safe_load(p.read_text())
    ro = c.get("rollout") or {}
    if isinstance(ro.get("replay"), dict):
        ro["replay"]["requests_per_minute"] = 12
    if isinstance(ro.get("stages"), dict):
        for s in ro["stages"].values():
            if isinstance(s, dict) and "min_requests" in s:
                s["min_requests"] = max(1, s["min_requests"] // 10)
    if isinstance(c.get("evaluation"), dict):
        c["evaluation"]["bootstrap_samples"] = 100
    p.write_text(yaml.safe_dump(c, sort_keys=False))
    return dst


def _journal(ws: Path) -> list:
    j = Journal.open(ws / "sessions" / f"session_{SESSION}" / "trajectories", read_only=True)
    try:
        return list(j.records(include_archived=True))
    finally:
        j.close()


def reports_of(ws: Path, skip: tuple[str, ...] = ()) -> dict[str, object]:
    """Every file under reports/, parsed (JSON) or as text, with the workspace path normalised."""
    out: dict[str, object] = {}
    for p in sorted((ws / "reports").rglob("*")):
        rel = str(p.relative_to(ws))
        if not p.is_file() or rel.startswith(skip):
            continue
        text = p.read_text(encoding="utf-8").replace(str(ws), "<ws>")
        if p.suffix == ".json":
            out[rel] = json.loads(text)
        elif p.suffix == ".jsonl":
            out[rel] = [json.loads(line) for line in text.splitlines()]
        else:
            out[rel] = text
    return out


def world_of(ws: Path) -> dict[str, object]:
    """Deployments (every version and its manifest, every pointer), evaluation records, metrics."""
    out: dict[str, object] = {}
    for p in sorted((ws / "deployment").rglob("*")):
        if p.is_file():
            rel = str(p.relative_to(ws))
            out[rel] = json.loads(p.read_text()) if p.suffix == ".json" else p.stat().st_size
    for p in sorted((ws / "runs").rglob("*.json")):
        out[str(p.relative_to(ws))] = json.loads(p.read_text().replace(str(ws), "<ws>"))
    return out


def _response_key(d: dict) -> tuple:
    return (d.get("meeting_id") or d.get("action_id"), d["agent"], d["purpose"], d.get("step"), d["prompt_hash"])


@pytest.fixture(scope="module")
def crash_runs(tmp_path_factory, trained_artifacts):
    root = tmp_path_factory.mktemp("crash")
    project = _project(root / "project")
    bases = {}
    for m in (1, 2):  # crash-free runs, at paths as long as every case's
        bases[m] = _seed(root / f"b00{m}" / "ws", trained_artifacts)
        p = _run(project, bases[m], m)
        assert p.returncode == 0, p.stderr[-3000:]

    def case(i: int, point: str) -> dict:
        ws = _seed(root / f"c{i:03d}" / "ws", trained_artifacts)
        m = 2 if point in TWO_MEETINGS else 1
        crashed = _run(project, ws, m, point)
        out = {
            "point": point,
            "ws": ws,
            "meetings": m,
            "crash_rc": crashed.returncode,
            "crash_err": crashed.stderr[-2000:],
        }
        jdir = ws / "sessions" / f"session_{SESSION}" / "trajectories"
        if jdir.is_dir():  # what the kill left: a torn tail, and the handoff as readers see it
            j = Journal.open(jdir, read_only=True)
            out["torn_bytes"] = j.recovered_tail
            j.close()
        h = ws / "reports" / "handoff" / "pending_actions.json"
        out["handoff_after_kill"] = h.read_text() if h.exists() else None
        resumed = _run(project, ws, m)
        out["resume_rc"], out["resume_out"], out["resume_err"] = (
            resumed.returncode,
            resumed.stdout,
            resumed.stderr[-3000:],
        )
        return out

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = {r["point"]: r for r in pool.map(lambda a: case(*a), enumerate(POINTS))}
    finally:
        for server in _all_servers:
            server.close()
        _all_servers.clear()
        _servers.__dict__.clear()
    return project, bases, results


def test_at_least_twenty_distinct_crash_points():
    assert len(POINTS) == len(set(POINTS)) >= 20
    kinds = {p.split(":")[0] for p in POINTS}
    assert {
        "before",
        "after",
        "torn",
        "atomic",
        "deploy",
        "drill",
        "tool_before",
        "tool_after",
        "meeting",
        "heartbeat",
    } <= kinds


@pytest.mark.parametrize("point", POINTS)
def test_kill_and_resume(point, crash_runs):
    project, bases, results = crash_runs
    r = results[point]
    ws, base = r["ws"], bases[r["meetings"]]
    assert r["crash_rc"] == -9, f"the run never reached {point} (exit {r['crash_rc']}): {r['crash_err']}"
    if point.startswith("torn:"):
        assert r["torn_bytes"] > 0, "the kill was to leave a torn record"
    if r["handoff_after_kill"] is not None:
        json.loads(r["handoff_after_kill"])  # a reader never sees a half-written handoff
    assert r["resume_rc"] == 0, r["resume_err"]
    result = json.loads(r["resume_out"])
    assert result["status"] == "finished" and result["meetings"] == r["meetings"]

    # the journal opens cleanly (nothing left to cut) and reads through
    j = Journal.open(ws / "sessions" / f"session_{SESSION}" / "trajectories")
    assert j.recovered_tail == 0
    j.close()
    recs, base_recs = _journal(ws), _journal(base)
    assert [x.seq for x in recs] == list(range(1, len(recs) + 1))
    assert any(x.kind == "session_resumed" for x in recs)

    # each meeting held exactly once
    meetings = [x.data["meeting_id"] for x in recs if x.kind == "meeting_completed"]
    assert meetings == [x.data["meeting_id"] for x in base_recs if x.kind == "meeting_completed"]
    # no agent response requested twice, and none more than the crash-free run asked for
    keys = Counter(_response_key(x.data) for x in recs if x.kind == "agent_response")
    assert max(keys.values()) == 1, [k for k, n in keys.items() if n > 1]
    assert sum(keys.values()) == sum(1 for x in base_recs if x.kind == "agent_response")
    # every action finished once
    finished = Counter(x.data["action_id"] for x in recs if x.kind == "action_finished")
    assert max(finished.values()) == 1
    assert set(finished) == {x.data["action_id"] for x in base_recs if x.kind == "action_finished"}

    # each deployment happened exactly once: the same versions, each installed by one action
    world, base_world = world_of(ws), world_of(base)
    versions = [v for k, v in world.items() if k.endswith("version.json")]
    assert len({v["action_id"] for v in versions}) == len(versions)
    assert world == base_world
    assert read_handoff(ws / "reports" / "handoff" / "pending_actions.json") is not None

    # the reports equal the crash-free run's: as written, and rebuilt from the journal alone
    assert reports_of(ws) == reports_of(base)
    for p in list((ws / "reports" / "planning").iterdir()) + list((ws / "reports" / "execution").iterdir()):
        p.unlink()
    for name in ("rollout_state.json", "costs.json", "handoff/pending_actions.json"):
        (ws / "reports" / name).unlink()
    rb = subprocess.run(
        [sys.executable, "-m", "cvagents", "rebuild-reports", "--workspace", str(ws), "--project-root", str(project)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rb.returncode == 0, rb.stderr[-2000:]
    assert reports_of(ws) == reports_of(base)
