"""Start-up cost: ``import cvagents``, building the shipped twelve-agent team, the monitors' import.

Each figure is taken in a fresh interpreter (median of ``--runs``): wall time of the measured
step (judged), its CPU time (steadier on a loaded machine; shown) and the process's peak
resident memory (``ru_maxrss``) at its end. As an installed package runs: with Python's bytecode
cache (kept in a temporary ``PYTHONPYCACHEPREFIX``, so the tree is not touched, even where the
environment sets ``PYTHONDONTWRITEBYTECODE``) and with the list prices a start-up keeps
(``cvagents.config.prices``, in a temporary ``XDG_CACHE_HOME``); one unjudged run first fills
both, and its time is shown as ``cold`` (every cvagents module compiled from source, the
genai-prices table imported for the budget check).

- ``import cvagents``;
- ``import cvagents`` + building the team of ``configs/meeting.yaml`` with real providers
  (dummy keys in the environment, so each agent's SDK provider is built; no call is made);
- the monitors' import: what the monitor notebooks import (``cvagents.ui`` dashboards and status).

Also listed: which SDKs and whether torch each step loaded.

    .venv/bin/python benchmarks/bench_import.py [--runs 5]

Targets: import + team <= 1.0 s and <= 60 MiB; monitors' import <= 0.5 s. Exit status 1 when over.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, resource, sys, time
t0, c0 = time.perf_counter(), time.process_time()
{code}
dt, cpu = time.perf_counter() - t0, time.process_time() - c0
heavy = sorted(set(sys.modules) & {{"torch", "openai", "anthropic", "google.genai", "pandas", "matplotlib", "genai_prices"}})
print(json.dumps({{"s": dt, "cpu_s": cpu, "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "loaded": heavy}}))
"""

TEAM = """
import cvagents
from cvagents.config import Settings
from cvagents.llm.cost import CostLedger
from cvagents.planning.team import build_teams
from cvagents.runner import provider_factory
settings = Settings({root!r})
ledger = CostLedger(settings.meeting.budgets)
teams = build_teams(settings, provider_factory(settings, "configured", strict=True, ledger=ledger))
assert len(teams.planning) + len(teams.executive) == 12
"""

MONITORS = """
from cvagents.ui.dashboard import SystemDashboard, monitor_execution, monitor_planning
from cvagents.ui.status import collect_status, format_status
"""

STEPS = {
    "import cvagents": ("import cvagents", None, 60.0),
    "import + build the 12-agent team": (TEAM.format(root=str(ROOT)), 1.0, 60.0),
    "monitors' import (cvagents.ui)": (MONITORS, 0.5, None),
}
DUMMY_KEYS = {"ANTHROPIC_API_KEY": "bench-key", "OPENAI_API_KEY": "bench-key", "GOOGLE_API_KEY": "bench-key"}


PYCACHE = tempfile.mkdtemp(prefix="cvagents-bench-cache-")


def probe(code: str) -> dict:
    env = {
        **os.environ,
        **DUMMY_KEYS,
        "PYTHONPATH": str(ROOT),
        "PYTHONPYCACHEPREFIX": PYCACHE,
        "XDG_CACHE_HOME": PYCACHE,
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(code=code)], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if out.returncode:
        raise SystemExit(f"probe failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    try:
        return run(args.runs)
    finally:
        shutil.rmtree(PYCACHE, ignore_errors=True)


def run(n_runs: int) -> int:
    over = False
    print(f"fresh interpreter per run, median of {n_runs}; time of the step, peak RSS of the process")
    for name, (code, max_s, max_mib) in STEPS.items():
        cold = probe(code)["s"]
        runs = [probe(code) for _ in range(n_runs)]
        s = statistics.median(r["s"] for r in runs)
        mib = statistics.median(r["rss_mib"] for r in runs)
        cpu = statistics.median(r["cpu_s"] for r in runs)
        verdicts = []
        if max_s is not None:
            verdicts.append(f"<= {max_s:.1f} s: {'PASS' if s <= max_s else 'OVER'}")
            over |= s > max_s
        if max_mib is not None:
            verdicts.append(f"<= {max_mib:.0f} MiB: {'PASS' if mib <= max_mib else 'OVER'}")
            over |= mib > max_mib
        loaded = ", ".join(runs[0]["loaded"]) or "none"
        print(
            f"  {name:34s} {s:6.3f} s (CPU {cpu:6.3f} s, cold {cold:6.3f} s)  {mib:6.1f} MiB  [{'; '.join(verdicts)}]  heavy modules loaded: {loaded}"
        )
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
