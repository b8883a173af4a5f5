"""Start the autonomous system on the Colab VM, as the guide's Step 2 describes.

    python sync/deploy_updated_system.py --project /content/cv_project --workspace /content/cv_project/workspace \
        [--provider offline] [--meetings 3] [--time-scale 600] [--mirror-to /content/drive/MyDrive/.../run_mirror]

or from a notebook cell, after ``sync_all_files.py`` (defaults: /content/cv_project and its
``workspace/``; ``CV_PROJECT_DIR``, ``CV_WORKSPACE`` and ``CV_MIRROR_TO`` override them)::

    exec(open('/content/drive/MyDrive/cv_multimodal/project/computer-vision-clean/sync/deploy_updated_system.py').read())

It checks the project's files and configs, builds the teams, then runs the coordinator in the
foreground (the guide's heartbeat log follows). Re-running it after a disconnect resumes the
unfinished session in the same workspace, or, on a new VM
with an empty workspace, restores it from the mirror first.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

LOCAL_PROJECT = "/content/cv_project"


def _import_project(project: Path) -> None:
    if str(project) not in sys.path:
        sys.path.insert(0, str(project))  # the copied package, whether or not it was pip-installed


def deploy(
    project: str | os.PathLike,
    workspace: str | os.PathLike,
    *,
    provider: str = "configured",
    meetings: int | None = None,
    time_scale: float = 1.0,
    mirror_to: str | None = None,
    new_session: bool = False,
    handle_sigint: bool = False,
    out=None,
) -> dict:
    """Check the project, say what will run, run it. ``handle_sigint``: Ctrl-C stops cleanly
    after the current step (a script; a notebook keeps its kernel's own interrupt)."""
    out = out or sys.stdout
    project, workspace = Path(project).resolve(), Path(workspace)

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    say("🚀 DEPLOYING UPDATED AUTONOMOUS SYSTEM")
    _import_project(project)
    from cvagents.config import Settings
    from cvagents.runner import mirror_to_restore, run_system

    settings = Settings(project)  # checks both configs and every prompt file; a mistake names file and key
    say(f"✅ Files updated: {project} (configs and prompts checked)")
    planning, executive = settings.meeting.planning_agents(), settings.meeting.executive_agents()
    say(f"✅ Coordinator initialized: workspace {workspace.resolve()}, provider {provider}, time scale {time_scale:g}×")
    say(
        f"✅ All {len(planning) + len(executive)} agents active: {len(planning)} planning ({', '.join(planning)}), {len(executive)} executive ({', '.join(executive)})"
    )
    options: dict = dict(
        provider=provider,
        meetings=meetings,
        time_scale=time_scale,
        project_root=project,
        console=True,
        handle_sigint=handle_sigint,
        mirror_to=mirror_to or None,
        new_session=new_session,
    )
    if mirror_to:
        say(f"✅ Mirror every {settings.coordination.mirror.interval_seconds:g} s to {mirror_to}")
        if not new_session:  # a new VM after a disconnect: restore the empty workspace from the mirror first
            options["resume_from"] = mirror_to_restore(workspace, mirror_to, project_root=project)
            if options["resume_from"]:
                say(f"⤵ Restoring the workspace from the mirror {mirror_to}")
    say("💓 Heartbeat system started")
    result = run_system(workspace, **options)
    say(
        f"🏁 Run {result.get('status')}: {result.get('meetings')} meetings, {result.get('heartbeats')} heartbeats (session {result.get('session_id')})"
    )
    return result


def main(argv: list[str] | None = None, *, in_notebook: bool = False) -> int:
    project_default = os.environ.get("CV_PROJECT_DIR", LOCAL_PROJECT)
    p = argparse.ArgumentParser(description="Start the cvagents coordinator (the guide's deploy_updated_system.py).")
    p.add_argument("--project", default=project_default, help=f"the synced project (default: {LOCAL_PROJECT})")
    p.add_argument(
        "--workspace", default=os.environ.get("CV_WORKSPACE"), help="the run's folder (default: <project>/workspace)"
    )
    p.add_argument("--provider", default="configured", choices=["configured", "offline"])
    p.add_argument("--meetings", type=int, help="stop after N meetings (default: run until stopped)")
    p.add_argument("--time-scale", type=float, default=1.0)
    p.add_argument(
        "--mirror-to",
        default=os.environ.get("CV_MIRROR_TO"),
        help="mirror the session to this folder every 10 s (e.g. on Drive)",
    )
    p.add_argument(
        "--new-session", action="store_true", help="start a new session instead of resuming an unfinished one"
    )
    args = p.parse_args(argv)
    workspace = args.workspace or str(Path(args.project) / "workspace")
    _import_project(Path(args.project).resolve())
    from cvagents.errors import CVAgentsError

    try:
        result = deploy(
            args.project,
            workspace,
            provider=args.provider,
            meetings=args.meetings,
            time_scale=args.time_scale,
            mirror_to=args.mirror_to,
            new_session=args.new_session,
            handle_sigint=not in_notebook,
        )
    except CVAgentsError as e:  # a config or option error names file and key; a workspace in use, its run
        print(f"❌ {e}", file=sys.stderr)
        return 2
    return 0 if result.get("status") in ("finished", "stopped") else 1


if __name__ == "__main__":
    if "ipykernel" in sys.argv[0] or "colab" in sys.argv[0]:  # exec(open(...).read()) in a notebook
        main([], in_notebook=True)
    else:
        sys.exit(main())
