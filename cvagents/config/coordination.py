"""The schema of ``configs/autonomous_coordination.yaml``: the schedule, the stage plan and its
gates, evaluation, the mirror, the journal, the workspace layout and the tools' limits.

Checked when it loads, so that a config that would run unsafely never runs: stages in
increasing traffic, from a first stage that serves none to a last that serves all; gates on
metrics an evaluator produces; layout and folder paths inside the workspace.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from cvagents.config.base import KeyedValueError, Strict, workspace_relative

STAGES = ("shadow", "5_percent", "20_percent", "50_percent", "production")
#: how a factory (a model adapter, an evaluator function) is named: ``package.module:attribute``
FACTORY_SPEC = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


class AdaptiveTiming(Strict):
    enabled: bool = True
    min_planning_interval_minutes: float = Field(default=10, gt=0)
    max_planning_interval_minutes: float = Field(default=60, gt=0)
    min_heartbeat_minutes: float = Field(default=2, gt=0)
    backlog_factor: float = Field(
        default=1.0,
        gt=0,
        description="heartbeats speed up when pending actions exceed backlog_factor × what the "
        "remaining heartbeats of the phase can carry out",
    )


class Schedule(Strict):
    planning_interval_minutes: float = Field(default=30, gt=0)
    heartbeat_minutes: float = Field(default=5, gt=0)
    actions_per_heartbeat: int = Field(default=3, ge=1)
    adaptive_timing: AdaptiveTiming = Field(default_factory=AdaptiveTiming)

    @model_validator(mode="after")
    def _bounds(self) -> Schedule:
        a = self.adaptive_timing
        if not a.min_planning_interval_minutes <= self.planning_interval_minutes <= a.max_planning_interval_minutes:
            raise ValueError(
                "adaptive_timing: expected min_planning_interval_minutes <= planning_interval_minutes"
                " <= max_planning_interval_minutes"
            )
        if a.min_heartbeat_minutes > self.heartbeat_minutes:
            raise ValueError("adaptive_timing.min_heartbeat_minutes: expected <= heartbeat_minutes")
        return self


GateOp = Literal[">=", ">", "<=", "<", "=="]


class GateDef(Strict):
    """One gate: a metric an evaluator produces, compared with a threshold."""

    metric: str = Field(description="a metric produced by an evaluator (see cvagents.metric_sources.METRIC_SOURCES)")
    op: GateOp
    threshold: bool | int | float
    critical: bool = Field(
        default=False, description="a critical gate fails the stage at once, even on too little evidence"
    )


class StagePlan(Strict):
    """One stage of the rollout: its traffic weight, the evidence it needs and its gates."""

    traffic: float = Field(
        ge=0, le=1, description="share of live traffic the candidate serves; 0 = shadow (mirrored, never served)"
    )
    min_requests: int = Field(
        default=0, ge=0, description="requests the candidate must have answered (replayed) before its gates can pass"
    )
    min_observed_minutes: float = Field(
        default=0, ge=0, description="traffic time (simulated minutes replayed) the candidate must have been observed"
    )
    gates: tuple[str, ...] = Field(default=(), description="names of gates under rollout.gates")


class Slo(Strict):
    latency_objective_ms: float = Field(
        default=50.0, gt=0, description="a request answered without error within this is SLO-compliant"
    )


class Incidents(Strict):
    """What counts as a P0 incident in one traffic replay."""

    p0_error_rate: float = Field(
        default=0.01, ge=0, le=1, description="the candidate's error rate above this bound is a P0"
    )
    p0_on_crash: bool = Field(default=True, description="the candidate failing to load or crashing is a P0")


class Replay(Strict):
    """How validation queries are replayed as live traffic."""

    requests_per_minute: float = Field(
        default=120.0, gt=0, description="simulated traffic rate: a replay of m minutes routes m × this many requests"
    )
    default_minutes: float = Field(default=10.0, gt=0)
    max_minutes: float = Field(default=240.0, gt=0, description="the most one replay may cover")
    warmup_requests: int = Field(default=10, ge=0, description="untimed requests per model before timing starts")
    keep_request_logs: int | None = Field(
        default=200,
        ge=1,
        description="per-request logs kept under runs/report/traffic/, newest first (null = keep all); each replay's summary stays in metrics.json",
    )


DEFAULT_GATES: dict[str, dict[str, Any]] = {
    "ndcg_at_10": {"metric": "ndcg_at_10_ci95_low", "op": ">=", "threshold": 0.72},
    "latency_p95_ms": {"metric": "latency_p95_ms", "op": "<", "threshold": 50.0},
    "slo_compliance": {"metric": "slo_compliance", "op": ">=", "threshold": 0.99},
    "p0_incidents": {"metric": "p0_incidents", "op": "<=", "threshold": 0, "critical": True},
    "rollback_test": {"metric": "rollback_test_passed", "op": "==", "threshold": True},
    # against the champion in production, on the same queries (pass when there is none)
    "ndcg_vs_champion": {"metric": "ndcg_delta_ci95_low", "op": ">=", "threshold": -0.01},
    "latency_vs_champion": {"metric": "latency_p95_ratio", "op": "<=", "threshold": 1.2},
}
_ALL_GATES = tuple(DEFAULT_GATES)
DEFAULT_PLAN: dict[str, dict[str, Any]] = {
    "shadow": {"traffic": 0.0, "min_requests": 1000, "min_observed_minutes": 10, "gates": _ALL_GATES},
    "5_percent": {"traffic": 0.05, "min_requests": 150, "min_observed_minutes": 30, "gates": _ALL_GATES},
    "20_percent": {"traffic": 0.2, "min_requests": 500, "min_observed_minutes": 30, "gates": _ALL_GATES},
    "50_percent": {"traffic": 0.5, "min_requests": 2000, "min_observed_minutes": 60, "gates": _ALL_GATES},
    "production": {"traffic": 1.0, "min_requests": 5000, "min_observed_minutes": 60, "gates": _ALL_GATES},
}


class Rollout(Strict):
    """The stage plan, in order (``stages`` is a mapping: iterating it gives the stage names in
    order, ``stage in stages`` tests a name), the gates the stages name, and the rules around them."""

    stages: dict[str, StagePlan] = Field(default_factory=lambda: {k: StagePlan(**v) for k, v in DEFAULT_PLAN.items()})
    gates: dict[str, GateDef] = Field(default_factory=lambda: {k: GateDef(**v) for k, v in DEFAULT_GATES.items()})
    slo: Slo = Field(default_factory=Slo)
    incidents: Incidents = Field(default_factory=Incidents)
    replay: Replay = Field(default_factory=Replay)
    require_approval: tuple[str, ...] = Field(
        default=(), description="stages a human must approve (cvagents approve) before a deployment to them"
    )
    drill_before_promotion: bool = Field(
        default=True, description="a passed rollback drill of the version in the previous stage is needed to promote it"
    )
    artifact_folders: tuple[str, ...] = Field(
        default=("research",), description="where a model may be deployed from into the first stage"
    )

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.stages)

    def plan(self, stage: str) -> StagePlan:
        return self.stages[stage]

    @field_validator("stages")
    @classmethod
    def _some_stages(cls, v: dict[str, StagePlan]) -> dict[str, StagePlan]:
        if len(v) < 2:
            raise ValueError("expected at least two stages: a first at traffic 0 (shadow), a last at traffic 1.0")
        return v

    @field_validator("artifact_folders")
    @classmethod
    def _folders_inside(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return _all_workspace_relative("rollout.artifact_folders", v)

    @model_validator(mode="after")
    def _traffic_rises(self) -> Rollout:
        """The plan only widens exposure: no traffic first, more at every stage, all of it last.
        Out of order, the first deployment would serve users before any gate was passed."""
        plans = list(self.stages.items())
        first, start = plans[0]
        if start.traffic != 0:
            raise KeyedValueError(
                f"rollout.stages.{first}.traffic",
                f"expected 0 (the first stage serves no traffic: the candidate runs in shadow), got {start.traffic:g}",
            )
        for (before, a), (stage, b) in zip(plans, plans[1:]):
            if b.traffic <= a.traffic:
                raise KeyedValueError(
                    f"rollout.stages.{stage}.traffic",
                    f"expected more than {before}'s {a.traffic:g} (stages in increasing traffic), got {b.traffic:g}",
                )
        last, end = plans[-1]
        if end.traffic != 1:
            raise KeyedValueError(
                f"rollout.stages.{last}.traffic",
                f"expected 1.0 (the last stage serves all traffic), got {end.traffic:g}",
            )
        return self

    @model_validator(mode="after")
    def _names_known(self) -> Rollout:
        for stage, plan in self.stages.items():
            for gate in plan.gates:
                if gate not in self.gates:
                    raise KeyedValueError(
                        f"rollout.stages.{stage}.gates",
                        f"expected gates defined under rollout.gates ({', '.join(self.gates)}), got {gate!r}",
                    )
        for s in self.require_approval:
            if s not in self.stages:
                raise KeyedValueError(
                    "rollout.require_approval", f"expected stage names ({', '.join(self.stages)}), got {s!r}"
                )
        for name, g in self.gates.items():
            if isinstance(g.threshold, bool) and g.op != "==":
                raise KeyedValueError(
                    f"rollout.gates.{name}.op", f"expected '==' for a true/false threshold, got {g.op!r}"
                )
        return self


class Evaluation(Strict):
    """Which evaluator measures a model: the demo model's, a user's function, or a script."""

    evaluator: str = Field(
        default="builtin",
        description='"builtin", "package.module:function", or a script under a script folder (e.g. research/evaluate_model.py) that prints its metrics as JSON',
    )
    metrics: tuple[str, ...] = Field(
        default=(), description="extra metric names a custom evaluator produces, so gates may name them"
    )
    bootstrap_samples: int = Field(default=1000, ge=0)
    timeout_s: float = Field(default=300.0, gt=0)

    @field_validator("evaluator")
    @classmethod
    def _spec(cls, v: str) -> str:
        if v == "builtin" or FACTORY_SPEC.fullmatch(v) or (v.endswith(".py") and not v.startswith("/")):
            return v
        raise ValueError('expected "builtin", "package.module:function" or a relative path to a .py script')


class Serving(Strict):
    """How a model is loaded and queried (``cvagents.models.adapter``), and where candidates may
    come from besides a file."""

    adapter: str = Field(
        default="cvagents.models.demo_adapter:load",
        description='the default model adapter, "package.module:factory" (a candidate may name its own)',
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        description="the MLflow tracking/registry server for models:/ candidates (null: MLFLOW_TRACKING_URI, else none)",
    )
    champion_alias: str = Field(default="champion", description="the MLflow alias a promoted candidate gets")

    @field_validator("adapter")
    @classmethod
    def _adapter_spec(cls, v: str) -> str:
        if FACTORY_SPEC.fullmatch(v):
            return v
        raise ValueError('expected "package.module:factory"')


class Compute(Strict):
    """Where evaluation and traffic replay run: in this process, or sharded over Ray actors
    (``cvagents.models.compute``; the ``ray`` extra). With ``local`` Ray is never imported."""

    engine: Literal["local", "ray"] = Field(default="local", description="local (this process) or ray")
    address: str = Field(
        default="",
        description='the Ray cluster: "auto" (one this machine belongs to), "ray://host:port" (Ray Client), or empty: a local Ray started on demand with this machine\'s CPUs',
    )
    workers: int | None = Field(
        default=None,
        ge=1,
        description="Ray actors, each loading the model once (null: as many as the cluster's CPUs allow)",
    )
    num_cpus: float = Field(default=1.0, gt=0, description="CPUs each worker asks for")
    num_gpus: float = Field(default=0.0, ge=0, description="GPUs each worker asks for (a GPU model asks for one)")
    shard_size: int = Field(
        default=250,
        ge=1,
        description="queries (or replayed requests) per shard; the shards depend on this alone, so both engines batch alike",
    )

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        if v in ("", "auto") or re.fullmatch(r"ray://[^\s/:]+:\d+", v):
            return v
        raise ValueError('expected "auto", "ray://host:port" or empty (a local Ray)')


class Mirror(Strict):
    interval_seconds: float = Field(default=10.0, gt=0)
    target: str | None = None


class JournalSettings(Strict):
    """The session journal's segments and the retention rule that bounds its disk use."""

    segment_max_bytes: int = Field(
        default=1_000_000, gt=0, description="a segment is closed and a new one opened past this size"
    )
    fsync: bool = Field(default=True, description="fsync every record (off only for benchmarks)")
    keep_segments: int = Field(
        default=4, ge=0, description="closed segments kept as they are; older ones are gzipped into archive/"
    )
    keep_archived_segments: int | None = Field(
        default=50, ge=0, description="archived segments kept; older ones are deleted (null: keep all)"
    )


class WorkspaceLayout(Strict):
    """Where each part of a run lives, relative to the workspace folder (and inside it)."""

    planning: str = "reports/planning"
    execution: str = "reports/execution"
    handoff: str = "reports/handoff"
    metrics: str = "runs/report/metrics.json"
    deployment: str = "deployment"
    research: str = "research"
    validation_set: str = "data/validation_set"
    sessions: str = "sessions"
    log: str = "executive.log"

    @field_validator("*")
    @classmethod
    def _inside(cls, v: str) -> str:
        return workspace_relative(v)


class ScriptLimits(Strict):
    """Resource limits on a script's process, set (setrlimit) before the script starts; each
    process it starts inherits them. null: no limit beyond the user's own."""

    cpu_seconds: int | None = Field(default=3600, gt=0, description="CPU time, over all its threads")
    memory_mb: int | None = Field(
        default=8192, gt=0, description="writable memory: heap, data and anonymous maps (RLIMIT_DATA)"
    )
    file_size_mb: int | None = Field(default=4096, gt=0, description="the largest file it may write")
    open_files: int | None = Field(default=1024, ge=16, description="file descriptors open at once")


class Tools(Strict):
    script_folders: tuple[str, ...] = ("research",)
    script_timeout_s: float = Field(default=300.0, gt=0)
    script_output_max_chars: int = Field(default=20000, gt=0)
    script_limits: ScriptLimits = Field(default_factory=ScriptLimits)

    @field_validator("script_folders")
    @classmethod
    def _folders_inside(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return _all_workspace_relative("tools.script_folders", v)


def _all_workspace_relative(key: str, folders: tuple[str, ...]) -> tuple[str, ...]:
    for f in folders:
        try:
            workspace_relative(f)
        except ValueError as e:
            raise KeyedValueError(key, f"{e}, got {f!r}") from None
    return folders


class CoordinationConfig(Strict):
    schedule: Schedule = Field(default_factory=Schedule)
    rollout: Rollout = Field(default_factory=Rollout)
    evaluation: Evaluation = Field(default_factory=Evaluation)
    serving: Serving = Field(default_factory=Serving)
    compute: Compute = Field(default_factory=Compute)
    mirror: Mirror = Field(default_factory=Mirror)
    journal: JournalSettings = Field(default_factory=JournalSettings)
    workspace: WorkspaceLayout = Field(default_factory=WorkspaceLayout)
    tools: Tools = Field(default_factory=Tools)

    @model_validator(mode="after")
    def _gates_name_produced_metrics(self) -> CoordinationConfig:
        """A gate naming a metric that no evaluator produces could never pass: refuse it now."""
        from cvagents.metric_sources import METRIC_SOURCES

        produced = set(METRIC_SOURCES) | set(self.evaluation.metrics)
        for name, g in self.rollout.gates.items():
            if g.metric not in produced:
                extra = " (a custom evaluator's metrics go under evaluation.metrics)"
                raise KeyedValueError(
                    f"rollout.gates.{name}.metric",
                    f"expected a metric an evaluator produces ({', '.join(sorted(produced))}){extra}, got {g.metric!r}",
                )
        ev = self.evaluation.evaluator
        if ev.endswith(".py"):
            parts = Path(ev).parts
            if ".." in parts or not any(Path(ev).is_relative_to(f) for f in self.tools.script_folders):
                raise KeyedValueError(
                    "evaluation.evaluator",
                    f"expected a script under {', '.join(self.tools.script_folders)} (tools.script_folders), got {ev!r}",
                )
        return self
