"""Evaluators: what measures a model, and which metrics each source of evidence produces.

The evaluator is configured in ``evaluation.evaluator``:

- ``builtin`` — the demo model's evaluation (``cvagents.models.evaluate_model``): NDCG@10 with a
  bootstrap 95 % CI, recall@10, MRR, per-query latency P50/P95/P99 after a warm-up;
- ``"package.module:function"`` — a user's function, imported from the environment and called
  as ``function(model_path: str, validation_set: str) -> dict`` of metrics;
- ``research/evaluate_model.py`` (any ``.py`` under ``tools.script_folders``) — a script run
  like ``run_python_script`` (no shell, timeout, key-free environment) with
  ``--model <path> --validation-set <path>``, which prints its metrics as one JSON object.

Whatever the evaluator, the result is a flat dict of metrics; a gate may name any metric in
``METRIC_SOURCES`` or listed under ``evaluation.metrics`` (checked when the config loads).
"""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path
from typing import Any

from cvagents.errors import CVAgentsError
from cvagents.metric_sources import evaluation_metrics


class EvaluatorError(CVAgentsError):
    """The configured evaluator (``evaluation.evaluator``) could not be run or gave something
    that is not metrics. The evaluation tool reports it as a failed call."""


def evaluate(cfg, ws, model_path: Path, validation_dir: Path) -> dict[str, Any]:
    """Run the configured evaluator on one model; a flat dict of metrics (validated)."""
    spec = cfg.evaluation.evaluator
    if spec == "builtin":
        from cvagents.models import evaluate_model  # torch only when evaluating

        metrics = evaluate_model(model_path, validation_dir, bootstrap_samples=cfg.evaluation.bootstrap_samples)
    elif spec.endswith(".py"):
        metrics = _run_script(cfg, ws, spec, model_path, validation_dir)
    else:
        metrics = _call_function(spec, model_path, validation_dir)
    return normalise(metrics, spec, cfg)


def normalise(metrics: Any, spec: str, cfg) -> dict[str, Any]:
    """Check an evaluator's output and derive the CI bounds as their own metrics."""
    if not isinstance(metrics, dict):
        raise EvaluatorError(f"evaluator {spec} returned {type(metrics).__name__}, expected a dict of metrics")
    out = dict(metrics)
    ci = out.get("ndcg_at_10_ci95")
    if ci is not None:
        if not (isinstance(ci, (list, tuple)) and len(ci) == 2 and all(_number(x) for x in ci)):
            raise EvaluatorError(f"evaluator {spec}: ndcg_at_10_ci95 must be [low, high], got {ci!r}")
        out["ndcg_at_10_ci95"] = [float(ci[0]), float(ci[1])]
        out.setdefault("ndcg_at_10_ci95_low", float(ci[0]))
        out.setdefault("ndcg_at_10_ci95_high", float(ci[1]))
    for name in evaluation_metrics(cfg):
        if name in out and out[name] is not None and not _number(out[name]):
            raise EvaluatorError(f"evaluator {spec}: metric {name} must be a finite number, got {out[name]!r}")
    if not any(out.get(m) is not None for m in evaluation_metrics(cfg)):
        raise EvaluatorError(
            f"evaluator {spec} produced none of the known metrics ({', '.join(sorted(evaluation_metrics(cfg)))})"
        )
    return out


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _call_function(spec: str, model_path: Path, validation_dir: Path) -> Any:
    module_name, fn_name = spec.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise EvaluatorError(f"evaluator {spec}: cannot import {module_name} ({e})") from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise EvaluatorError(f"evaluator {spec}: {module_name} has no function {fn_name}")
    return fn(str(model_path), str(validation_dir))


def _run_script(cfg, ws, spec: str, model_path: Path, validation_dir: Path) -> Any:
    from cvagents.execution.tools.scripts import ScriptError, run_script

    args = ["--model", ws.rel(model_path), "--validation-set", ws.rel(validation_dir)]
    try:
        out = run_script(ws, cfg.tools, spec, args, timeout_s=cfg.evaluation.timeout_s)
    except ScriptError as e:
        raise EvaluatorError(f"evaluator {spec}: {e}") from None
    return parse_json_output(out["stdout"], spec)


def parse_json_output(stdout: str, spec: str = "script") -> Any:
    """The JSON object a script printed: its last line that is one, else its whole output."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    try:
        return json.loads(stdout)
    except ValueError:
        raise EvaluatorError(f"{spec} printed no JSON object (last output: {stdout.strip()[-200:]!r})") from None
