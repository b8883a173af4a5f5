"""The run's log on the mirror: ``executive.log`` is a single-file source, copied whole while it
is small and as its last 64 KiB (from a line start) once it is not, so a monitor reading the
mirror on Drive shows the log's last lines; a restore leaves it out (the run starts its own)."""

from __future__ import annotations

import hashlib
import json

from cvagents.config import CoordinationConfig
from cvagents.durability.mirror import MANIFEST_NAME, Mirror
from cvagents.durability.mirror_files import LOG_TAIL_BYTES
from cvagents.durability.restore import restore
from cvagents.durability.session import mirror_sources
from cvagents.ui import dashboard_data as dd
from cvagents.workspace import Workspace


def _ws(tmp_path) -> Workspace:
    ws = Workspace.from_config(tmp_path / "ws", CoordinationConfig()).create()
    (ws.planning_dir / "summary_1.md").write_text("# meeting 1\n")
    return ws


def _listed(target) -> dict:
    return json.loads((target / MANIFEST_NAME).read_text())["files"]


def test_the_mirror_lists_the_log_beside_the_workspace_folders(tmp_path):
    ws = _ws(tmp_path)
    sources = mirror_sources(ws)
    assert sources["executive.log"] == ws.log_file and "reports" in sources
    assert "executive.log" not in mirror_sources(ws, log=False)


def test_a_small_log_is_copied_whole_and_again_when_it_grows(tmp_path):
    ws = _ws(tmp_path)
    ws.log_file.write_text("2026-01-01 10:00:00 💓 HEARTBEAT CYCLE #1\n")
    target = tmp_path / "mirror"
    m = Mirror(mirror_sources(ws), target)
    assert m.flush().ok
    assert (target / "executive.log").read_bytes() == ws.log_file.read_bytes()
    with open(ws.log_file, "a") as f:
        f.write("2026-01-01 10:05:00 [TOOL] deploy_model(stage=shadow) ✅\n")
    assert m.flush().ok
    copy = (target / "executive.log").read_bytes()
    assert copy == ws.log_file.read_bytes()
    assert _listed(target)["executive.log"] == {"size": len(copy), "sha256": hashlib.sha256(copy).hexdigest()}


def test_a_long_log_is_mirrored_as_its_last_64_kib_from_a_line_start(tmp_path):
    ws = _ws(tmp_path)
    lines = [f"2026-01-01 10:{i // 60 % 60:02d}:{i % 60:02d} [TOOL] step {i} ✅" for i in range(5000)]
    ws.log_file.write_text("\n".join(lines) + "\n")
    assert ws.log_file.stat().st_size > 3 * LOG_TAIL_BYTES
    target = tmp_path / "mirror"
    m = Mirror(mirror_sources(ws), target)
    assert m.flush().ok
    copy = (target / "executive.log").read_bytes()
    assert len(copy) <= LOG_TAIL_BYTES and ws.log_file.read_bytes().endswith(copy)
    assert copy.decode().splitlines()[0] in lines  # whole lines only
    assert _listed(target)["executive.log"]["sha256"] == hashlib.sha256(copy).hexdigest()
    with open(ws.log_file, "a") as f:
        f.write("2026-01-01 12:00:00 🚦 Rollout controller: rolled back shadow\n")
    assert m.flush().ok
    assert (target / "executive.log").read_bytes().endswith(b"rolled back shadow\n")
    # the execution monitor, reading the mirror, shows the log's last lines
    e = dd.execution_data(dd.Source(target))
    assert e["log_tail"][-1].endswith("rolled back shadow") and e["log_tail"][-2] == lines[-1]
    # a resumed mirror (a new process) adopts or re-copies it, and the restore leaves it out
    assert Mirror(mirror_sources(ws), target).flush().ok
    res = restore(target, mirror_sources(ws, log=False))
    assert "executive.log" in res.skipped
