"""``cvagents``: run the autonomous system, check on it, make its model.

Results go to stdout (text, or ``--json``), everything else to stderr; exit codes mean something
(``cli_conventions``). A failure the user can act on ends as one line on stderr, ``error:
<path>: <what>``, and exit code 2: every ``CVAgentsError`` (a bad config or option, a workspace
in use, a damaged journal ...) and the environment's failures — an ``OSError`` (permission
denied, disk full, a missing path), a file that is not UTF-8 or not JSON. Anything else is a
bug and shows as one, with its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from cvagents.cli_conventions import (
    ExitCode,
    describe_os_error,
    emit,
    existing_workspace,
    fail,
    package_version,
    path_of,
    print_json,
    reader_gone,
    run_exit_code,
)
from cvagents.errors import CVAgentsError


def cmd_run(args) -> int:
    from cvagents.runner import run_system

    if args.trace:
        from cvagents import tracing

        tracing.configure(True)  # OpenTelemetry spans, exported as the OTEL_* variables say (OTLP by default)

    with contextlib.redirect_stdout(sys.stderr):  # stdout holds the result; whatever the run prints goes to stderr
        result = run_system(
            args.workspace,
            provider=args.provider,
            meetings=args.meetings,
            time_scale=args.time_scale,
            project_root=args.project_root,
            meeting_config=args.meeting_config,
            coordination_config=args.coordination_config,
            console=not args.quiet,
            strict=args.strict,
            resume_from=args.resume_from,
            new_session=args.new_session,
            mirror_to=args.mirror_to,
            session_id=args.session_id,
            start_time=args.start_time,
            manual_clock=args.manual_clock,
            repair=args.repair,
            local_model=args.local_model,
            model=args.model,
        )
    status = result["status"]
    emit(
        args,
        result,
        f"{status}: session {result['session_id']}, {result['meetings']} meeting(s), {result['heartbeats']} heartbeat(s)",
    )
    return run_exit_code(status)


def cmd_rebuild_reports(args) -> int:
    from cvagents.config import Settings, check_session_id, default_project_root
    from cvagents.run.rebuild import rebuild_reports

    settings = Settings(
        Path(args.project_root or default_project_root()), args.meeting_config, args.coordination_config
    )
    if args.session is not None:
        check_session_id(args.session, "--session")
    r = rebuild_reports(Path(args.workspace), args.session, settings=settings)
    emit(
        args,
        r,
        f"rebuilt the reports of session {r['session_id']}: {r['meetings']} meeting(s), {r['heartbeats']} "
        f"heartbeat(s), {r['deployment_logs']} deployment log(s), {r['decisions']} decision(s)",
    )
    return 0


def cmd_status(args) -> int:
    from cvagents.ui.status import collect_status, format_status, to_json

    s = collect_status(existing_workspace(args.workspace))
    print(to_json(s) if args.json else format_status(s))
    return 0


def cmd_verify(args) -> int:
    from cvagents.config import Settings, default_project_root
    from cvagents.durability.verify import verify_folder
    from cvagents.workspace import Workspace

    settings = Settings(
        Path(args.project_root or default_project_root()), args.meeting_config, args.coordination_config
    )
    root = existing_workspace(args.workspace)
    ws = Workspace.open(root, settings.coordination)  # the run's layout: where its sessions are
    v = verify_folder(ws.root, ws.sessions_dir)
    problems = [" ".join(p.splitlines()) for p in v.problems]
    if args.json:
        print_json(
            {"folder": str(root), "sound": v.sound, "sessions": v.sessions, "files": v.files, "problems": problems}
        )
    elif v.sound:
        print(f"sound: {v.sessions} session(s)" + (f", {v.files} mirrored files" if v.files else "") + f" in {root}")
    else:
        print("\n".join(problems))
        print(f"damaged: {len(v.problems)} problem(s) in {root}", file=sys.stderr)
    return ExitCode.OK if v.sound else ExitCode.FAILED


def cmd_create_artifacts(args) -> int:
    from cvagents.models import create_artifacts

    a = create_artifacts(Path(args.workspace), seed=args.seed)
    emit(
        args,
        a,
        f"trained {a['variant']} (seed {a['seed']}) in {a['total_seconds']:.1f} s: {a['model_path']} "
        f"(sha256 {a['model_sha256'][:12]}), NDCG@10 {a['validation_ndcg_at_10']:.4f} on {a['validation_set']}",
    )
    return 0


def cmd_plot(args) -> int:
    from cvagents.ui.plots import plot_workspace

    paths = plot_workspace(existing_workspace(args.workspace), args.out)
    emit(args, [str(p) for p in paths], "\n".join(map(str, paths)))
    return 0


def _workspace(args):
    """The workspace with the config its run left there (``Workspace.open``), else the project's."""
    from cvagents.config import Settings, default_project_root
    from cvagents.workspace import Workspace

    settings = Settings(
        Path(args.project_root or default_project_root()), args.meeting_config, args.coordination_config
    )
    return Workspace.open(existing_workspace(args.workspace), settings.coordination)


def cmd_approve(args) -> int:
    from cvagents.rollout.approval import approve

    ws = _workspace(args)  # the stages the run left there
    cfg = ws.config
    rec = approve(ws, cfg, args.stage, sha=args.sha, by=args.by, note=args.note or "")
    what = rec["version"] or "the artifact"
    emit(args, rec, f"approved {what} (sha256 {rec['sha256'][:12]}) for {rec['stage']}, by {rec['approved_by']}")
    if not rec["required"]:
        print(
            f"note: {args.stage} is not under rollout.require_approval; the approval is recorded but not needed",
            file=sys.stderr,
        )
    return 0


def cmd_submit(args) -> int:
    from cvagents.rollout.submission import submit_candidate, submit_demo

    if (args.path is None) == (args.demo is None):
        raise SubmitUsageError("submit: give the candidate's PATH (or models:/ URI), or --demo degraded")
    if args.demo and args.adapter:
        raise SubmitUsageError("--adapter: a --demo model is loaded by the configured serving.adapter")
    ws = _workspace(args)
    if args.demo:
        entry = submit_demo(ws, ws.config, args.demo, name=args.name, by=args.by)
    else:
        entry = submit_candidate(ws, ws.config, args.path, name=args.name, adapter=args.adapter, by=args.by)
    emit(
        args,
        entry,
        f"submitted candidate {entry['name']} (sha256 {entry['sha256'][:12]}): {entry['path']}, loaded by "
        f"{entry['adapter'] or ws.config.serving.adapter}; the run plans its rollout at its next heartbeat",
    )
    return 0


def cmd_init(args) -> int:
    from cvagents.config.project import Written, init_project

    done = init_project(Path(args.folder), force=args.force)
    for path, what in done:
        print(f"{what:<8} {path}" + ("  (yours differs; --force replaces it)" if what == Written.KEPT else ""))
    print(
        f"edit them: a run started in {args.folder} (or given --project-root {args.folder}) uses them",
        file=sys.stderr,
    )
    return 0


class SubmitUsageError(CVAgentsError):
    """``cvagents submit`` given both or neither of PATH and --demo."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cvagents",
        description="An autonomous team of LLM agents that plans, carries out and guards the staged rollout of a model.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp):
        sp.add_argument("--workspace", default="workspace", help="the run's folder (default: ./workspace)")

    def as_json(sp):
        sp.add_argument("--json", action="store_true", help="print the result as one JSON document (default: text)")

    def configs(sp):
        sp.add_argument(
            "--project-root",
            help="folder holding configs/ and prompts/ (default: the current folder's, else this checkout's, else the packaged defaults; see `cvagents init`)",
        )
        sp.add_argument("--meeting-config", help="path to meeting.yaml (default: configs/meeting.yaml)")
        sp.add_argument("--coordination-config", help="path to autonomous_coordination.yaml")

    r = sub.add_parser(
        "run",
        help="run the planning meetings and executive heartbeats",
        description="Run the autonomous system: a Planning Team meeting every interval and Executive Team heartbeats between, on the accelerated clock if asked. Ctrl-C stops cleanly after the current step.",
    )
    common(r)
    configs(r)
    r.add_argument(
        "--provider",
        default="configured",
        choices=["configured", "offline"],
        help="'configured' (default): each agent on its provider from configs/meeting.yaml, falling back to offline without a key; 'offline': every agent on the built-in offline provider (no keys, no network)",
    )
    r.add_argument(
        "--local-model",
        metavar="URL",
        help="put every agent on this OpenAI-compatible server (e.g. Ollama's http://127.0.0.1:11434/v1), with settings for a CPU server (long timeouts, no retries, short answers); needs --model; overrides defaults.local_model in meeting.yaml",
    )
    r.add_argument(
        "--model", metavar="NAME", help="the model the --local-model server serves (e.g. qwen2.5:1.5b-instruct)"
    )
    r.add_argument("--meetings", type=int, help="stop after N meetings and their execution phases")
    r.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="simulated minutes per real minute (600: a 30-minute interval lasts 3 s)",
    )
    r.add_argument(
        "--strict",
        action="store_true",
        help="an agent whose provider has no API key is an error instead of falling back to offline",
    )
    r.add_argument("--quiet", action="store_true", help="log to executive.log only")
    r.add_argument(
        "--new-session",
        action="store_true",
        help="start a new session even if the workspace has an unfinished one (by default it is continued)",
    )
    r.add_argument(
        "--resume-from",
        metavar="MIRROR",
        help="restore the workspace from this mirror (a folder, e.g. on Google Drive, or an fsspec URL) and continue its session; the run keeps mirroring there",
    )
    r.add_argument(
        "--mirror-to",
        metavar="TARGET",
        help="mirror the session and reports to this folder or fsspec URL (overrides mirror.target)",
    )
    r.add_argument("--session-id", help="continue, or start, the session with this id")
    r.add_argument("--start-time", help="a new session's simulated start time, ISO 8601 (default: now)")
    r.add_argument(
        "--manual-clock",
        action="store_true",
        help="steps take no simulated time: the schedule runs as fast as the machine allows (tests, benchmarks)",
    )
    r.add_argument(
        "--repair",
        action="store_true",
        help="resume over a damaged journal: cut it at the damage (what follows is moved aside and its loss journaled) and go on from the last checkpoint before it",
    )
    r.add_argument(
        "--trace",
        action="store_true",
        help="export OpenTelemetry spans of the run (the otel extra; OTLP to OTEL_EXPORTER_OTLP_ENDPOINT, default localhost:4318); setting that variable alone also turns tracing on",
    )
    as_json(r)
    r.set_defaults(fn=cmd_run)

    rb = sub.add_parser(
        "rebuild-reports",
        help="rebuild reports/ from a session's journal",
        description="Rewrite the meeting reports, execution reports, deployment logs, handoff, rollout_state.json and costs.json from the session's journal (the source of truth).",
    )
    common(rb)
    configs(rb)
    rb.add_argument("--session", help="the session id (default: the newest session)")
    as_json(rb)
    rb.set_defaults(fn=cmd_rebuild_reports)

    s = sub.add_parser(
        "status",
        help="quick status of a workspace",
        description="The system guide's quick status: meetings held, tools succeeded/failed, essential files, stages, last log lines.",
    )
    common(s)
    as_json(s)
    s.set_defaults(fn=cmd_status)

    v = sub.add_parser(
        "verify",
        help="check every session's journal in a workspace or a mirror; exit 1 on damage",
        description="Check every session of a workspace, or of its mirror folder: each journal segment against the digest taken when it closed (and every record of the open one), every archive, each session.json, and a mirror's MANIFEST.json and the files it lists. Prints one line per problem; exits 0 when all is sound, 1 on damage.",
    )
    common(v)
    configs(v)
    as_json(v)
    v.set_defaults(fn=cmd_verify)

    c = sub.add_parser(
        "create-artifacts",
        help="train the V1 model and write its validation set",
        description="Train the demo V1 multimodal model (a torch dual encoder) on synthetic data and write research/v1_production.pth and data/validation_set/.",
    )
    common(c)
    c.add_argument("--seed", type=int, default=0)
    as_json(c)
    c.set_defaults(fn=cmd_create_artifacts)

    pl = sub.add_parser(
        "plot",
        help="write the dashboards' figures as PNG under reports/plots/",
        description="Draw the monitors' figures (NDCG@10 with its confidence band, P95 latency and SLO compliance against the gates, tool executions per heartbeat, tokens per agent, agent participation) from a workspace or its mirror, and write them as PNG files.",
    )
    common(pl)
    pl.add_argument("--out", help="folder for the PNG files (default: <workspace>/reports/plots)")
    as_json(pl)
    pl.set_defaults(fn=cmd_plot)

    a = sub.add_parser(
        "approve",
        help="approve the promotion waiting for a stage (rollout.require_approval)",
        description="Record a human's approval for promoting the version live in the previous stage to STAGE (bound to that artifact's sha256). A run waiting at that step promotes it at its next meeting.",
    )
    common(a)
    configs(a)
    a.add_argument("--stage", required=True, help="the stage to approve, e.g. production")
    a.add_argument(
        "--sha",
        help="the artifact's sha256 (or a prefix of the candidate's); default: the version live in the previous stage",
    )
    a.add_argument("--by", help="who approves (default: the login name)")
    a.add_argument("--note", help="a note kept with the approval")
    as_json(a)
    a.set_defaults(fn=cmd_approve)

    sb = sub.add_parser(
        "submit",
        help="register a candidate model for rollout (a file, an MLflow models:/ URI, or --demo degraded)",
        description="Register a candidate in the workspace's model registry (reports/models/candidates/) after checking it: the file is inside rollout.artifact_folders, its adapter imports, loads it and answers the first validation query. The run journals it and plans its rollout against the champion in production.",
    )
    common(sb)
    configs(sb)
    sb.add_argument(
        "path",
        nargs="?",
        metavar="PATH",
        help="the model file (relative to the current folder, e.g. ws/research/model.pt), or models:/NAME/VERSION or models:/NAME@ALIAS",
    )
    sb.add_argument("--name", help="the candidate's name (default: the file's stem; v2 for --demo)")
    sb.add_argument("--adapter", metavar="MODULE:FACTORY", help="the adapter that loads it (default: serving.adapter)")
    sb.add_argument(
        "--demo",
        choices=["degraded"],
        help="instead of PATH: train the demo's deliberately worse model into research/v2_degraded.pth and submit it",
    )
    sb.add_argument("--by", help="who submits (default: the login name)")
    as_json(sb)
    sb.set_defaults(fn=cmd_submit)

    i = sub.add_parser(
        "init",
        help="write editable copies of the default configs/ and prompts/ into a folder",
        description="Copy the configuration shipped in the package (configs/meeting.yaml, configs/autonomous_coordination.yaml, prompts/) into FOLDER, one line per file. A file already there is kept unless --force. A run started in FOLDER (or given --project-root FOLDER) uses these copies.",
    )
    i.add_argument(
        "folder", nargs="?", default=".", metavar="FOLDER", help="where to write (default: the current folder)"
    )
    i.add_argument("--force", action="store_true", help="replace files that differ from the defaults")
    i.set_defaults(fn=cmd_init)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            return _dispatch(argv)
        finally:
            sys.stdout.flush()  # a reader that went away shows here, not as a traceback at exit
    except BrokenPipeError:
        return reader_gone()


def _dispatch(argv: list[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.fn(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        raise
    except CVAgentsError as e:
        return fail(str(e), e.exit_code)
    except OSError as e:
        return fail(describe_os_error(e))
    except UnicodeDecodeError as e:
        return fail(f"{path_of(e) or '(a file)'}: not UTF-8 text ({e.reason} at byte {e.start})")
    except json.JSONDecodeError as e:
        return fail(f"{path_of(e) or '(a file)'}: not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})")


if __name__ == "__main__":
    sys.exit(main())
