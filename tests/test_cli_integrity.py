"""Issue 12, through the CLI in real processes: a damaged journal is seen (``status``, ``run``,
``verify``) and cut only when asked (``run --repair``, recorded); a damaged session.json names
itself and hides no other session; session ids read from files never build a path outside the
workspace; mirror targets that cannot work are refused before anything is created."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cli_helpers import one_line_error, tree
from resume_helpers import Crash, run, seed

from cvagents.config import ConfigError, Settings

ROOT = Path(__file__).resolve().parent.parent
OTHER = "20250101_000000_abcdef"  # a second session, with an id as cvagents makes them


def cvagents(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cvagents", *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


def state(ws: Path) -> dict[str, bytes]:
    """The workspace's files but the log and the workspace lock's file (a refused run may touch them)."""
    return {k: v for k, v in tree(ws).items() if k not in ("executive.log", ".cvagents.lock")}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The shipped configs with small journal segments, so a short run closes and archives some."""
    root = tmp_path_factory.mktemp("project")
    for sub in ("configs", "prompts", "reports"):
        shutil.copytree(ROOT / sub, root / sub)
    path = root / "configs" / "autonomous_coordination.yaml"
    c = yaml.safe_load(path.read_text())
    c["journal"].update(segment_max_bytes=15000, keep_segments=2, fsync=False)
    path.write_text(yaml.safe_dump(c, sort_keys=False))
    return root


@pytest.fixture(scope="module")
def killed_run(project, tmp_path_factory) -> Path:
    """A workspace whose session ``t`` was killed in its second meeting's heartbeats: closed,
    archived and open segments, and a step to finish on resume."""
    ws = seed(tmp_path_factory.mktemp("killed") / "ws")
    try:
        run(ws, 2, crash_at=25, s=Settings(project))
    except Crash:  # pragma: no cover - run() reports the crash as None
        pass
    assert json.loads((ws / "sessions/session_t/session.json").read_text())["status"] == "running"
    return ws


@pytest.fixture
def ws(killed_run, tmp_path) -> Path:
    dst = tmp_path / "ws"
    shutil.copytree(killed_run, dst)
    return dst


def journal(ws: Path) -> Path:
    return ws / "sessions" / "session_t" / "trajectories"


def closed_segments(ws: Path) -> list[Path]:
    return sorted(journal(ws).glob("segment_*.jsonl"))[:-1]


def flip_in_line(path: Path, line: int) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    b = bytearray(lines[line - 1])
    b[len(b) // 2] ^= 0x01
    lines[line - 1] = bytes(b)
    path.write_bytes(b"".join(lines))


def _flipped(ws):
    seg = closed_segments(ws)[0]
    flip_in_line(seg, 2)
    return f"{seg}:2: closed segment does not match the sha256 taken when it closed"


def _truncated(ws):
    seg = closed_segments(ws)[-1]
    n = seg.read_bytes().count(b"\n")
    seg.write_bytes(seg.read_bytes()[:-40])
    return f"{seg}:{n}: closed segment truncated"


def _deleted(ws):
    seg = closed_segments(ws)[0]
    seg.unlink()
    return f"{seg}: closed segment is missing"


def _archive(ws):
    gz = sorted((ws / "sessions/session_t/archive").glob("*.gz"))[0]
    b = bytearray(gz.read_bytes())
    b[len(b) // 2] ^= 0x01
    gz.write_bytes(bytes(b))
    return f"{gz}: archived segment {gz.name.removesuffix('.gz')} "  # does not match its sha256 / cannot be read


@pytest.mark.parametrize("damage", [_flipped, _truncated, _deleted, _archive], ids=lambda f: f.__name__[1:])
def test_damage_is_reported_by_status_verify_and_run_which_refuses_to_resume(ws, project, damage):
    says = damage(ws)
    before = state(ws)

    st = cvagents("status", "--workspace", ws)
    assert st.returncode == 0 and "Traceback" not in st.stderr
    assert f"⚠️ Session t damaged: {says}" in st.stdout and "📋 Meetings:" in st.stdout

    v = cvagents("verify", "--workspace", ws, "--project-root", project)
    assert v.returncode == 1 and v.stdout.splitlines()[0].startswith(says) and "Traceback" not in v.stderr

    line = one_line_error(cvagents("run", "--provider", "offline", "--workspace", ws, "--project-root", project))
    assert line.startswith(f"error: {says}") and "--repair" in line
    assert state(ws) == before  # nothing cut, written or run; no new session
    assert sorted(p.name for p in (ws / "sessions").iterdir()) == ["session_t"]


def test_repair_cuts_at_the_damage_records_the_loss_and_resumes(ws, project):
    says = _flipped(ws)
    p = cvagents(
        "run", "--provider", "offline", "--workspace", ws, "--project-root", project, "--repair",
        "--meetings", "2", "--manual-clock", "--quiet", "--json",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    assert json.loads(p.stdout)["status"] == "finished" and json.loads(p.stdout)["session_id"] == "t"
    info = json.loads((ws / "sessions/session_t/session.json").read_text())
    (repair,) = info["last_resume"]["journal_repaired"]
    assert repair["problem"].startswith(says) and repair["line"] == 2 and repair["lost_records"] > 0
    aside = journal(ws) / repair["moved_to"]
    assert json.loads((aside / "REPAIR.json").read_text()) == repair and list(aside.glob("*.cut"))
    from cvagents.durability.journal import Journal

    with Journal.open(journal(ws), read_only=True) as j:
        recs = list(j.records(include_archived=True))
    assert [r.seq for r in recs] == list(range(1, len(recs) + 1))  # whole again
    cut = next(r for r in recs if r.kind == "journal_repaired")
    assert cut.data == repair and cut.seq == repair["kept_through_seq"] + 1
    assert [r.kind for r in recs[cut.seq :]][0] == "session_resumed"
    v = cvagents("verify", "--workspace", ws, "--project-root", project)
    assert v.returncode == 0 and v.stdout.startswith("sound: 1 session(s)"), v.stdout


def test_a_torn_last_line_of_the_open_segment_is_still_cut_silently(ws, project):
    seg = sorted(journal(ws).glob("segment_*.jsonl"))[-1]
    with open(seg, "ab") as f:
        f.write(b'{"seq":999,"ts":"x","kind":"agent_response","data":{"agent":"ops_')
    assert cvagents("verify", "--workspace", ws, "--project-root", project).returncode == 0
    assert "damaged" not in cvagents("status", "--workspace", ws).stdout
    p = cvagents(
        "run", "--provider", "offline", "--workspace", ws, "--project-root", project,
        "--meetings", "2", "--manual-clock", "--quiet", "--json",
    )  # fmt: skip
    assert p.returncode == 0 and json.loads(p.stdout)["status"] == "finished", p.stderr[-3000:]
    from cvagents.durability.journal import Journal

    with Journal.open(journal(ws), read_only=True) as j:
        seqs = [r.seq for r in j.records(include_archived=True)]
    assert seqs == list(range(1, len(seqs) + 1))  # the torn line was cut, the journal goes on whole


def test_verify_checks_a_mirror_folder(project, tmp_path):
    ws, mirror = seed(tmp_path / "ws"), tmp_path / "drive"
    run(ws, 1, s=Settings(project), mirror_to=str(mirror), session_id=OTHER)
    v = cvagents("verify", "--workspace", mirror, "--project-root", project)
    assert v.returncode == 0 and v.stdout.startswith("sound: 1 session(s), ") and "mirrored files" in v.stdout
    seg = sorted((mirror / f"sessions/session_{OTHER}/trajectories").glob("segment_*.jsonl"))[0]
    flip_in_line(seg, 3)
    v = cvagents("verify", "--workspace", mirror, "--project-root", project)
    assert v.returncode == 1 and "Traceback" not in v.stderr
    assert f"{seg}: sha256/size mismatch" in v.stdout and f"{seg}:3: closed segment does not match" in v.stdout
    manifest = json.loads((mirror / "MANIFEST.json").read_text())
    manifest["extra"]["session_id"] = "../../escape"
    (mirror / "MANIFEST.json").write_text(json.dumps(manifest))
    v = cvagents("verify", "--workspace", mirror, "--project-root", project)
    assert v.returncode == 1 and f"{mirror}/MANIFEST.json: extra.session_id '../../escape'" in v.stdout


def test_verify_a_missing_folder_is_one_line(tmp_path):
    line = one_line_error(cvagents("verify", "--workspace", tmp_path / "nowhere"))
    assert line == f"error: {tmp_path / 'nowhere'}: no such workspace or mirror folder"


# ------------------------------------------------------------------------- damaged session files


def _second_session(ws: Path) -> Path:
    other = ws / "sessions" / f"session_{OTHER}"
    shutil.copytree(ws / "sessions/session_t", other)
    info = json.loads((other / "session.json").read_text())
    (other / "session.json").write_text(json.dumps({**info, "session_id": OTHER, "status": "finished"}))
    return other


@pytest.mark.parametrize(
    "content, says",
    [
        (b"{garbage", "not valid JSON: Expecting property name enclosed in double quotes (line 1, column 2)"),
        (b'{"status": "\xff"}', "not UTF-8 text (invalid start byte at byte 12)"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (b'{"session_id": "../../escape", "status": "running"}', "session_id '../../escape' is not its folder's ('t')"),
    ],
    ids=["garbage", "not-utf8", "not-an-object", "foreign-id"],
)
def test_a_damaged_session_json_is_named_and_hides_no_other_session(ws, project, content, says):
    _second_session(ws)
    bad = ws / "sessions/session_t/session.json"
    bad.write_bytes(content)
    st = cvagents("status", "--workspace", ws)
    assert st.returncode == 0 and "Traceback" not in st.stderr
    assert f"⚠️ Session t damaged: {bad}: {says}" in st.stdout
    assert f"🧭 Session {OTHER}: finished" in st.stdout and "📋 Meetings:" in st.stdout  # the rest as usual

    v = cvagents("verify", "--workspace", ws, "--project-root", project)
    assert v.returncode == 1 and v.stdout.splitlines() == [f"{bad}: {says}"]

    before = state(ws)
    line = one_line_error(cvagents("run", "--provider", "offline", "--workspace", ws, "--project-root", project))
    assert line.startswith(f"error: {bad}: {says}") and "--new-session" in line
    assert state(ws) == before and not (ws.parent / "escape").exists()


def test_a_session_folder_that_leads_out_of_the_workspace_is_refused(ws, project, tmp_path):
    outside = tmp_path / "outside"
    shutil.move(ws / "sessions/session_t", outside)
    os.symlink(outside, ws / "sessions/session_t")
    before = tree(outside)
    st = cvagents("status", "--workspace", ws)
    assert (
        st.returncode == 0
        and f"⚠️ Session t damaged: {ws / 'sessions/session_t'}: a session folder that is a symbolic link" in st.stdout
    )
    line = one_line_error(cvagents("run", "--provider", "offline", "--workspace", ws, "--project-root", project))
    assert line.startswith(f"error: {ws / 'sessions/session_t'}: a session folder that is a symbolic link")
    assert tree(outside) == before


def test_restoring_from_a_manifest_naming_a_path_is_refused(tmp_path):
    from cvagents.durability.session import restore_from_mirror
    from cvagents.workspace import Workspace

    mirror = tmp_path / "drive"
    mirror.mkdir()
    (mirror / "MANIFEST.json").write_text(json.dumps({"files": {}, "extra": {"session_id": "../../escape"}}))
    with pytest.raises(ConfigError, match=r"drive/MANIFEST.json: extra.session_id: expected a session id"):
        restore_from_mirror(mirror, Workspace(tmp_path / "ws"))
    assert not (tmp_path / "ws").exists() and not (tmp_path / "escape").exists()


# ------------------------------------------------------------------------- mirror targets


def _missing_backend() -> tuple[str, str]:
    """An fsspec protocol whose backend package is not installed here, and that package."""
    import importlib.util

    for protocol, package in (("gs", "gcsfs"), ("s3", "s3fs"), ("az", "adlfs"), ("oci", "ocifs")):
        if importlib.util.find_spec(package) is None:
            return protocol, package
    pytest.skip("every cloud fsspec backend is installed")


@pytest.mark.parametrize(
    "target, says",
    [
        (
            "{ws}/reports/mirror",
            "is inside {ws}/reports, a folder the mirror copies: every tick would copy the mirror into itself",
        ),
        ("{ws}/sessions", "is inside {ws}/sessions, a folder the mirror copies"),
        ("file://{ws}/research/copy", "is inside {ws}/research, a folder the mirror copies"),
        ("{ws}", "is the workspace itself"),
        ("memory://mirror", "memory:// keeps the mirror in this process's memory and it vanishes with the process"),
        ("{missing}://bucket/mirror", "the {missing}:// backend is not installed: pip install {package}"),
    ],
    ids=["reports", "sessions", "file-url", "workspace", "memory", "missing-backend"],
)
def test_a_mirror_target_that_cannot_work_is_refused_before_anything_is_created(tmp_path, target, says):
    ws = tmp_path / "ws"
    missing, package = _missing_backend()
    target, says = (s.format(ws=ws, missing=missing, package=package) for s in (target, says))
    line = one_line_error(cvagents("run", "--provider", "offline", "--workspace", ws, "--mirror-to", target))
    assert line.startswith(f"error: --mirror-to: {target}") and says in line, line
    assert not ws.exists() and list(tmp_path.iterdir()) == []


def test_mirror_target_from_the_config_is_checked_too(tmp_path, project):
    proj = tmp_path / "project"
    shutil.copytree(project, proj)
    path = proj / "configs" / "autonomous_coordination.yaml"
    c = yaml.safe_load(path.read_text())
    ws = tmp_path / "ws"
    c["mirror"]["target"] = str(ws / "deployment" / "mirror")
    path.write_text(yaml.safe_dump(c, sort_keys=False))
    line = one_line_error(cvagents("run", "--provider", "offline", "--workspace", ws, "--project-root", proj))
    assert line.startswith(f"error: {path}: mirror.target: {ws}/deployment/mirror is inside {ws}/deployment")
    assert not ws.exists()
    c["mirror"]["target"] = "memory://m"
    path.write_text(yaml.safe_dump(c, sort_keys=False))
    line = one_line_error(cvagents("run", "--provider", "offline", "--workspace", ws, "--project-root", proj))
    assert line.startswith(f"error: {path}: mirror.target: memory://m: memory:// keeps the mirror") and not ws.exists()
