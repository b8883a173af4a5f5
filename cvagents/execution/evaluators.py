"""Evaluators: what measures a model, and which metrics each source of evidence produces.

The evaluator is configured in ``evaluation.evaluator``:

- ``builtin`` — ``cvagents.models.evaluate_model`` through the model's adapter (the candidate's
  own, else ``serving.adapter``): NDCG@10 with a bootstrap 95 % CI, recall@10, MRR, per-query
  latency P50/P95/P99 after a warm-up; and, when another version serves production (the
  champion), the paired comparison with it (``ndcg_delta`` with its CI, ``latency_p95_ratio``);
  run on the ``compute`` engine (this process, or sharded over Ray actors);
- ``"package.module:function"`` — a user's function, imported from the environment and called
  as ``function(model_path: str, validation_set: str) -> dict`` of metrics;
- ``research/evaluate_model.py`` (any ``.py`` under ``tools.script_folders``) — a script run
  like ``run_python_script`` (no shell, timeout, key-free environment) with
  ``--model <path> --validation-set <path>``, which prints its metrics as one JSON object.

Whatever the evaluator, the result is a flat dict of metrics; a gate may name any metric in
``METRIC_SOURCES`` or listed under ``evaluation.metrics`` (checked when the config loads). It
also says which champion the model was judged against (``champion``: None when none serves
production, so the comparison gates pass on a first rollout); an evaluator that does not compare
leaves the comparison metrics unmeasured, and their gates inconclusive, while a champion serves.
"""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path
from typing import Any

from cvagents.durability.hashing import sha256_file
from cvagents.errors import CVAgentsError
from cvagents.metric_sources import evaluation_metrics
from cvagents.models.adapter import AdapterError
from cvagents.models.collection import CollectionError
from cvagents.models.compute import ComputeError, engine_for
from cvagents.rollout import lifecycle


class EvaluatorError(CVAgentsError):
    """The configured evaluator (``evaluation.evaluator``) could not be run or gave something
    that is not metrics. The evaluation tool reports it as a failed call."""


def evaluate(cfg, ws, model_path: Path, validation_dir: Path, sha: str | None = None) -> dict[str, Any]:
    """Run the configured evaluator on one model (``sha``: its sha256, if known); a flat dict of
    metrics (validated). A model or validation set the adapter cannot use is an
    ``EvaluatorError`` with the adapter's own message."""
    spec = cfg.evaluation.evaluator
    sha = sha or sha256_file(model_path)
    champion = lifecycle.champion_for(ws, cfg, sha)
    if spec == "builtin":
        from cvagents.models.evaluate import evaluate_model

        try:
            engine = engine_for(cfg.compute)
            engine.connect()  # an unreachable cluster fails the step before it starts
        except ComputeError as e:
            raise EvaluatorError(str(e)) from None
        try:
            metrics = evaluate_model(
                model_path,
                validation_dir,
                adapter=lifecycle.adapter_for(ws, cfg, sha),
                champion=champion,
                bootstrap_samples=cfg.evaluation.bootstrap_samples,
                engine=engine,
            )
        except (AdapterError, CollectionError, ComputeError) as e:
            raise EvaluatorError(str(e)) from None
    elif spec.endswith(".py"):
        metrics = _run_script(cfg, ws, spec, model_path, validation_dir)
    else:
        metrics = _call_function(spec, model_path, validation_dir)
    out = normalise(metrics, spec, cfg)
    if "champion" not in out:  # an evaluator that does not compare: say who serves production
        out["champion"] = None if champion is None else {k: champion[k] for k in ("name", "sha256", "version")}
    return out


def normalise(metrics: Any, spec: str, cfg) -> dict[str, Any]:
    """Check an evaluator's output and derive the CI bounds as their own metrics."""
    if not isinstance(metrics, dict):
        raise EvaluatorError(f"evaluator {spec} returned {type(metrics).__name__}, expected a dict of metrics")
    out = dict(metrics)
    for name in ("ndcg_at_10_ci95", "ndcg_delta_ci95"):
        ci = out.get(name)
        if ci is None:
            continue
        if not (isinstance(ci, (list, tuple)) and len(ci) == 2 and all(_number(x) for x in ci)):
            raise EvaluatorError(f"evaluator {spec}: {name} must be [low, high], got {ci!r}")
        out[name] = [float(ci[0]), float(ci[1])]
        out.setdefault(f"{name}_low", float(ci[0]))
        out.setdefault(f"{name}_high", float(ci[1]))
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
