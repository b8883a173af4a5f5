"""`make demo` on a fresh clone: the set-up (venv, torch, the package and its dependencies) and
the run (V1 rolled out, V2 submitted and thrown back, the status), timed separately.

    python benchmarks/bench_fresh_clone.py [--repo .] [--keep]

Clones the repository's committed HEAD into a temporary folder, runs `make demo` there with the
environment of a new user (no PYTHONPATH, no active venv; pip as configured on the machine, so
packages come from its registry and torch from its wheel folder when one is configured), and
timestamps make's output as it streams: set-up is from the start to the first `cvagents run`
command, the run from there to the end. Targets: set-up < 300 s, run < 180 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cvagents.clock import stopwatch  # noqa: E402

SETUP_TARGET_S, RUN_TARGET_S = 300.0, 180.0
RUN_MARK = "/bin/cvagents run "  # make echoes each command before it runs it
#: the steps of `make demo`, by the command make echoes as it starts each (first match)
STEPS = [
    ("venv", "-m venv "),
    ("torch", "pip install torch"),
    ("pip install -e .", "pip install -e ."),
    ("run V1", RUN_MARK),
    ("submit V2 (trains it)", "/bin/cvagents submit "),
    ("run V2", RUN_MARK),
    ("status", "/bin/cvagents status "),
]


def steps(lines: list[tuple[float, str]], end: float) -> list[tuple[str, float]]:
    """How long each of ``STEPS`` took, from make's timestamped output."""
    starts: list[tuple[str, float]] = []
    at = 0
    for name, mark in STEPS:  # in order; a step make did not echo (torch already there) is left out
        found = next((j for j in range(at, len(lines)) if mark in lines[j][1]), None)
        if found is not None:
            starts.append((name, lines[found][0]))
            at = found + 1
    bounds = [t for _, t in starts[1:]] + [end]
    return [(name, b - t) for (name, t), b in zip(starts, bounds)]


def user_env() -> dict[str, str]:
    """A new user's environment: nothing of this checkout or of an active venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    venv = os.environ.get("VIRTUAL_ENV")
    if venv:
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(venv))
    return env


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", default=str(Path(__file__).resolve().parents[1]), help="the repository to clone")
    ap.add_argument("--keep", action="store_true", help="keep the clone (its path is printed)")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cvagents_fresh_clone_"))
    clone = tmp / "clone"
    try:
        subprocess.run(["git", "clone", "-q", a.repo, str(clone)], check=True)
        head = subprocess.run(["git", "-C", str(clone), "log", "-1", "--format=%h %s"], capture_output=True, text=True)
        print(f"clone: {clone} at {head.stdout.strip()[:90]}")
        sw = stopwatch()
        setup_s: float | None = None
        lines: list[tuple[float, str]] = []
        load_before = os.getloadavg()[0]
        log = (tmp / "make_demo.log").open("w")
        with subprocess.Popen(
            ["make", "demo"],
            cwd=clone,
            env=user_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        ) as p:
            assert p.stdout is not None
            for line in p.stdout:
                t = sw.elapsed()
                log.write(f"{t:8.2f} {line}")
                lines.append((t, line))
                if setup_s is None and RUN_MARK in line:
                    setup_s = t
        total = sw.elapsed()
        log.close()
        tail = (tmp / "make_demo.log").read_text().splitlines()[-12:]
        if p.returncode != 0 or setup_s is None:
            print(f"make demo failed (exit {p.returncode}); last lines:\n" + "\n".join(tail))
            return 1
        run_s = total - setup_s
        site = next((clone / ".venv" / "lib").glob("python*/site-packages"))
        size_mb = sum(f.stat().st_size for f in site.rglob("*") if f.is_file()) / 1e6
        status = [line.rstrip() for _, line in lines if line.startswith(("🚦 Stages", "🏆 Champion", "   candidate"))]
        print("the demo's end (cvagents status):\n" + "\n".join("  " + line[:150] for line in status[-3:]))
        for name, seconds in steps(lines, total):
            print(f"  {name:<24} {seconds:7.1f} s")
        print(f"set-up: {setup_s:.1f} s (venv, torch, `pip install -e .`: {size_mb:.0f} MB in site-packages)")
        print(f"run:    {run_s:.1f} s (two `cvagents run`, `submit --demo degraded`, `status`)")
        print(f"total:  {total:.1f} s; load average (1 min) {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
        ok = setup_s < SETUP_TARGET_S and run_s < RUN_TARGET_S
        print(f"target: set-up < {SETUP_TARGET_S:.0f} s, run < {RUN_TARGET_S:.0f} s -> {'PASS' if ok else 'FAIL'}")
        return 0 if ok else 1
    finally:
        if a.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
