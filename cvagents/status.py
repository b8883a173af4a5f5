"""``cvagents status``: the guide's quick status check, read from a workspace (local or mirrored)."""
from __future__ import annotations

import json
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any

from . import deployment, metrics_store
from .atomic import read_json
from .config import STAGES
from .workspace import Workspace


def collect_status(root: Path, stages: tuple[str, ...] = STAGES) -> dict[str, Any]:
    ws = Workspace(root, stages=stages)
    meetings = tools_ok = tools_failed = 0
    last: deque[str] = deque(maxlen=10)
    if ws.log_file.is_file():
        with open(ws.log_file, encoding="utf-8", errors="replace") as f:
            for line in f:
                if "Meeting complete" in line:
                    meetings += 1
                if "[TOOL]" in line:
                    if "✅" in line:
                        tools_ok += 1
                    elif "❌" in line:
                        tools_failed += 1
                last.append(line.rstrip("\n"))
    essential = {ws.rel(p): p.exists() for p in ws.essential_files()}
    metrics = metrics_store.load(ws.metrics_file)
    latest = metrics.get("latest") or {}
    sessions = sorted(ws.sessions_dir.glob("session_*/session.json")) if ws.sessions_dir.is_dir() else []
    session = read_json(sessions[-1]) if sessions else None
    return {
        "time": datetime.now().strftime("%H:%M:%S"),
        "workspace": str(ws.root),
        "meetings": meetings,
        "tools_succeeded": tools_ok,
        "tools_failed": tools_failed,
        "essential_files": essential,
        "essential_present": all(essential.values()),
        "stages": {s: (deployment.live(ws.stage_dir(s)) or {}).get("version") for s in stages},
        "latest_metrics": {k: latest.get(k) for k in metrics_store.GATE_FIELDS} if latest else None,
        "session": session,
        "costs": read_json(ws.reports_dir / "costs.json"),
        "last_lines": list(last),
    }


def format_status(s: dict[str, Any]) -> str:
    out = [f"🕐 {s['time']}", "=" * 60]
    out.append(f"📋 Meetings: {s['meetings']}")
    out.append(f"🔧 Tools: {s['tools_succeeded']} successful, {s['tools_failed']} failed")
    out.append(f"📦 Essential files: {'✅ Present' if s['essential_present'] else '❌ Missing'}")
    for p, ok in s["essential_files"].items():
        if not ok:
            out.append(f"   missing: {p}")
    out.append("🚦 Stages: " + ", ".join(f"{k}={v or '—'}" for k, v in s["stages"].items()))
    m = s["latest_metrics"]
    if m:
        out.append(f"📈 Latest: NDCG@10 {m.get('ndcg_at_10')}, P95 {m.get('latency_p95_ms')} ms, SLO {m.get('slo_compliance')}")
    c = s.get("costs")
    if c:
        out.append(f"💰 Spent: ${c['total_usd']:.4f} in all")
        out.append("   per agent: " + ", ".join(f"{a} ${v:.4f}" for a, v in sorted(c["by_agent"].items())))
        out.append("   per meeting: " + ", ".join(f"{m} ${v:.4f}" for m, v in list(c["by_meeting"].items())[-5:]))
        out.append("   per day: " + ", ".join(f"{d} ${v:.4f}" for d, v in c["by_day"].items()))
        if c.get("downgrades"):
            out.append(f"   budget downgrades: {len(c['downgrades'])}")
    if s["session"]:
        out.append(f"🧭 Session {s['session']['session_id']}: {s['session']['status']}")
    out.append("\n📜 Last 10 lines:")
    out += s["last_lines"]
    return "\n".join(out)


def to_json(s: dict[str, Any]) -> str:
    return json.dumps(s, indent=2, ensure_ascii=False)
