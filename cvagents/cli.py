"""``cvagents``: run the autonomous system, check on it, make its model."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import ConfigError


def cmd_run(args) -> int:
    from .runner import run_system

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
    )
    print(json.dumps(result))
    return 0


def cmd_status(args) -> int:
    from .status import collect_status, format_status, to_json

    s = collect_status(Path(args.workspace))
    print(to_json(s) if args.json else format_status(s))
    return 0


def cmd_create_artifacts(args) -> int:
    from .models import create_artifacts

    summary = create_artifacts(Path(args.workspace), variant=args.variant, seed=args.seed)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cvagents", description="An autonomous team of LLM agents that plans, carries out and guards the staged rollout of a model.")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp):
        sp.add_argument("--workspace", default="workspace", help="the run's folder (default: ./workspace)")

    def configs(sp):
        sp.add_argument("--project-root", help="folder holding configs/ and prompts/ (default: this checkout)")
        sp.add_argument("--meeting-config", help="path to meeting.yaml (default: configs/meeting.yaml)")
        sp.add_argument("--coordination-config", help="path to autonomous_coordination.yaml")

    r = sub.add_parser("run", help="run the planning meetings and executive heartbeats", description="Run the autonomous system: a Planning Team meeting every interval and Executive Team heartbeats between, on the accelerated clock if asked. Ctrl-C stops cleanly after the current step.")
    common(r)
    configs(r)
    r.add_argument("--provider", default="configured", choices=["configured", "offline"], help="'configured' (default): each agent on its provider from configs/meeting.yaml, falling back to offline without a key; 'offline': every agent on the built-in offline provider (no keys, no network)")
    r.add_argument("--meetings", type=int, help="stop after N meetings and their execution phases")
    r.add_argument("--time-scale", type=float, default=1.0, help="simulated minutes per real minute (600: a 30-minute interval lasts 3 s)")
    r.add_argument("--strict", action="store_true", help="an agent whose provider has no API key is an error instead of falling back to offline")
    r.add_argument("--quiet", action="store_true", help="log to executive.log only")
    r.set_defaults(fn=cmd_run)

    s = sub.add_parser("status", help="quick status of a workspace", description="The system guide's quick status: meetings held, tools succeeded/failed, essential files, stages, last log lines.")
    common(s)
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(fn=cmd_status)

    c = sub.add_parser("create-artifacts", help="train the V1 model and write its validation set", description="Train the demo V1 multimodal model (a torch dual encoder) on synthetic data and write research/v1_production.pth and data/validation_set/.")
    common(c)
    c.add_argument("--variant", default="v1", choices=["v1", "degraded"], help="'degraded' builds a deliberately worse candidate (research/v1_degraded.pth)")
    c.add_argument("--seed", type=int, default=0)
    c.set_defaults(fn=cmd_create_artifacts)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except ConfigError as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
