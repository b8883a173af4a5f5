"""Copy the project from Google Drive to the Colab VM and report by category, as the guide shows.

    python sync/sync_all_files.py --source /content/drive/MyDrive/.../computer-vision-clean --dest /content/cv_project

or, as in the guide, from a notebook cell (defaults: the guide's Drive folder and /content/cv_project;
``CV_DRIVE_PROJECT`` and ``CV_PROJECT_DIR`` override them)::

    exec(open('/content/drive/MyDrive/cv_multimodal/project/computer-vision-clean/sync/sync_all_files.py').read())

Only the project's own files are copied (the categories below: the whole ``cvagents`` package,
recursively, and the configs, prompts, docs, notebooks and scripts beside it), never a
workspace, a venv or .git; a file already up to date (same size and mtime) is not copied again.
Every required file that is missing is named. Exit status 1 when one is missing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

DRIVE_PROJECT = "/content/drive/MyDrive/cv_multimodal/project/computer-vision-clean"
LOCAL_PROJECT = "/content/cv_project"

PLANNING = ("moderator", "pre_architect", "data_analyst", "tech_analysis", "critic", "cotrr_team")
EXECUTIVE = (
    "ops_commander",
    "infra_guardian",
    "latency_analyst",
    "compliance_monitor",
    "integration_engineer",
    "rollback_officer",
)

#: the Python package: copied whole, recursively (every module and package-data file in it)
PACKAGE = "cvagents"
#: not copied from the package: byte-code caches and hidden files
_SKIP_PARTS = ("__pycache__",)
_SKIP_SUFFIXES = (".pyc", ".pyo")

# (category, files that must be there, patterns for the rest of the category); the package's
# files that no other category claims belong to the first category, "Core System".
CATEGORIES: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    (
        "Core System",
        (
            "cvagents/run/coordinator.py",
            "cvagents/runner.py",
            "cvagents/planning/meeting.py",
            "cvagents/execution/executive.py",
            "cvagents/planning/handoff.py",
            "cvagents/durability/journal.py",
            "cvagents/cli.py",
            "pyproject.toml",
        ),
        ("setup.py", "requirements.txt"),
    ),
    ("Multi-Agent Configs", ("configs/meeting.yaml", "configs/autonomous_coordination.yaml"), ()),
    (
        "Execution Tools",
        (
            "cvagents/execution/tools/registry.py",
            "cvagents/execution/tools/deploy.py",
            "cvagents/execution/tools/evaluation.py",
            "cvagents/execution/tools/scripts.py",
            "cvagents/execution/tools/artifacts.py",
        ),
        ("cvagents/execution/tools/**/*",),
    ),
    (
        "Planning Team Prompts",
        tuple(f"prompts/planning_team/{a}.md" for a in PLANNING),
        ("prompts/planning_team/*.md",),
    ),
    (
        "Executive Team Prompts",
        tuple(f"prompts/executive_team/{a}.md" for a in EXECUTIVE),
        ("prompts/executive_team/*.md",),
    ),
    (
        "Research Context",
        ("README.md", "reports/handoff/README.md", "reports/handoff/pending_actions_TEMPLATE.json"),
        ("docs/*.md",),
    ),
    (
        "Deployment Scripts",
        (
            "sync/sync_all_files.py",
            "sync/deploy_updated_system.py",
            "cvagents/rollout/deployment.py",
            "cvagents/rollout/controller.py",
        ),
        ("notebooks/*.ipynb",),
    ),
    (
        "Evaluation & Data",
        (
            "cvagents/models/evaluate.py",
            "cvagents/models/train.py",
            "cvagents/models/data.py",
            "cvagents/models/metrics.py",
        ),
        ("cvagents/models/**/*",),
    ),
]


def _copied(rel: str) -> bool:
    """Whether a file of the project is one to copy (not a cache, not hidden)."""
    parts = rel.split("/")
    return not (any(p in _SKIP_PARTS or p.startswith(".") for p in parts) or rel.endswith(_SKIP_SUFFIXES))


def package_files(source: Path) -> list[str]:
    """Every file of the package, recursively (relative paths), as they are to be copied."""
    root = source / PACKAGE
    found = (p.relative_to(source).as_posix() for p in root.rglob("*") if p.is_file()) if root.is_dir() else ()
    return sorted(rel for rel in found if _copied(rel))


def plan(source: Path) -> list[tuple[str, list[str], list[str]]]:
    """Per category: the files to copy (relative paths) and the required ones that are missing."""
    claimed = {f for _, req, _ in CATEGORIES for f in req}
    out = []
    for name, required, patterns in CATEGORIES:
        files = [f for f in required if (source / f).is_file()]
        missing = [f for f in required if not (source / f).is_file()]
        for pat in patterns:
            for p in sorted(source.glob(pat)):
                rel = p.relative_to(source).as_posix()
                if p.is_file() and rel not in claimed and _copied(rel):
                    files.append(rel)
                    claimed.add(rel)
        out.append((name, files, missing))
    rest = [rel for rel in package_files(source) if rel not in claimed]
    out[0][1].extend(rest)  # the rest of the package: Core System
    return out


def _up_to_date(src: Path, dst: Path) -> bool:
    try:
        a, b = src.stat(), dst.stat()
    except FileNotFoundError:
        return False
    return a.st_size == b.st_size and int(a.st_mtime) == int(b.st_mtime)


def sync(source: str | os.PathLike, dest: str | os.PathLike, out=None) -> dict:
    """Copy and report; returns ``{"synced", "copied", "missing": [...], "categories": {name: (found, expected)}}``."""
    out = out or sys.stdout
    source, dest = Path(source), Path(dest)
    if not source.is_dir():
        print(f"❌ Source folder not found: {source} (is Google Drive mounted?)", file=out)
        return {"synced": 0, "copied": 0, "missing": [str(source)], "categories": {}}
    synced = copied = 0
    report, missing_all = [], []
    for name, files, missing in plan(source):
        for rel in files:
            src, dst = source / rel, dest / rel
            if not _up_to_date(src, dst):
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
                copied += 1
            synced += 1
        expected = len(files) + len(missing)
        report.append((name, len(files), expected, missing))
        missing_all += missing
    print(
        f"{'✅' if not missing_all else '⚠️'} Successfully synced: {synced} files ({copied} copied, {synced - copied} already up to date) → {dest}",
        file=out,
    )
    for name, found, expected, missing in report:
        mark = "✅" if not missing else "❌"
        line = f"{mark} {name}: {found}/{expected}"
        if missing:
            line += " — missing: " + ", ".join(missing)
        print(line, file=out)
    return {
        "synced": synced,
        "copied": copied,
        "missing": missing_all,
        "categories": {n: (f, e) for n, f, e, _ in report},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Copy the cvagents project from Google Drive to the Colab VM, reporting by category."
    )
    p.add_argument(
        "--source",
        default=os.environ.get("CV_DRIVE_PROJECT", DRIVE_PROJECT),
        help=f"the project on Drive (default: {DRIVE_PROJECT})",
    )
    p.add_argument(
        "--dest",
        default=os.environ.get("CV_PROJECT_DIR", LOCAL_PROJECT),
        help=f"where to copy it (default: {LOCAL_PROJECT})",
    )
    args = p.parse_args(argv)
    return 1 if sync(args.source, args.dest)["missing"] else 0


if __name__ == "__main__":
    if "ipykernel" in sys.argv[0] or "colab" in sys.argv[0]:  # exec(open(...).read()) in a notebook
        main([])
    else:
        sys.exit(main())
