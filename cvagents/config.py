"""Typed configuration from ``configs/meeting.yaml`` and ``configs/autonomous_coordination.yaml``.

Every mistake in a config file ends in one ``ConfigError`` that names the file, the key and what
was expected, e.g. ``configs/meeting.yaml: agents.critic.provider: expected one of 'anthropic',
'openai', 'gemini', 'offline', got 'gpt'``.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ProviderName = Literal["anthropic", "openai", "gemini", "offline"]
STAGES = ("shadow", "5_percent", "20_percent", "50_percent", "production")
PLANNING_ROLES = ("moderator", "pre_architect", "data_analyst", "tech_analysis", "critic", "cotrr_team")
EXECUTIVE_ROLES = (
    "ops_commander",
    "infra_guardian",
    "latency_analyst",
    "compliance_monitor",
    "integration_engineer",
    "rollback_officer",
)


class ConfigError(ValueError):
    """A configuration file is missing, unreadable or holds a value of the wrong kind."""


class KeyedValueError(ValueError):
    """A check across keys that names the key at fault itself (reported as ``key: message``)."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- meeting.yaml


class AgentConfig(_Strict):
    team: Literal["planning", "executive"]
    role: str
    provider: ProviderName
    model: str
    prompt: str
    base_url: str | None = None
    fallback_model: str | None = None
    api_key_env: str | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    max_retries: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, gt=0)


class CallDefaults(_Strict):
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=4, ge=0)
    max_tokens: int = Field(default=1500, gt=0)
    max_tool_steps: int = Field(default=6, ge=1)


class MeetingProtocol(_Strict):
    rounds: int = Field(default=1, ge=1, le=5)
    max_actions: int = Field(default=20, ge=1, le=50)
    synthesis_retries: int = Field(default=2, ge=0)
    fallback_moderator: str = Field(
        default="offline",
        description="'offline', or a planning agent whose provider synthesises when the moderator's is down",
    )
    summaries_in_context: int = Field(default=3, ge=0)


class Price(_Strict):
    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float = Field(default=0.0, ge=0)


class Budgets(_Strict):
    per_meeting_usd: float | None = Field(default=None, ge=0)
    per_day_usd: float | None = Field(default=None, ge=0)


class MeetingConfig(_Strict):
    defaults: CallDefaults = CallDefaults()
    meeting: MeetingProtocol = MeetingProtocol()
    agents: dict[str, AgentConfig]
    pricing: dict[str, Price] = {}
    budgets: Budgets = Budgets()

    @model_validator(mode="after")
    def _teams_complete(self) -> MeetingConfig:
        if "moderator" not in self.agents or self.agents["moderator"].team != "planning":
            raise ValueError("agents.moderator: expected a planning agent named 'moderator'")
        if not self.executive_agents():
            raise ValueError("agents: expected at least one agent with team 'executive'")
        fb = self.meeting.fallback_moderator
        if fb != "offline" and fb not in self.planning_agents():
            raise ValueError(f"meeting.fallback_moderator: expected 'offline' or a planning agent's name, got {fb!r}")
        return self

    def planning_agents(self) -> dict[str, AgentConfig]:
        return {n: a for n, a in self.agents.items() if a.team == "planning"}

    def executive_agents(self) -> dict[str, AgentConfig]:
        return {n: a for n, a in self.agents.items() if a.team == "executive"}


# ------------------------------------------------------------ autonomous_coordination.yaml


class AdaptiveTiming(_Strict):
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


class Schedule(_Strict):
    planning_interval_minutes: float = Field(default=30, gt=0)
    heartbeat_minutes: float = Field(default=5, gt=0)
    actions_per_heartbeat: int = Field(default=3, ge=1)
    adaptive_timing: AdaptiveTiming = AdaptiveTiming()

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


class GateDef(_Strict):
    """One gate: a metric an evaluator produces, compared with a threshold."""

    metric: str = Field(description="a metric produced by an evaluator (see cvagents.metric_sources.METRIC_SOURCES)")
    op: GateOp
    threshold: bool | int | float
    critical: bool = Field(
        default=False, description="a critical gate fails the stage at once, even on too little evidence"
    )


class StagePlan(_Strict):
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


class Slo(_Strict):
    latency_objective_ms: float = Field(
        default=50.0, gt=0, description="a request answered without error within this is SLO-compliant"
    )


class Incidents(_Strict):
    """What counts as a P0 incident in one traffic replay."""

    p0_error_rate: float = Field(
        default=0.01, ge=0, le=1, description="the candidate's error rate above this bound is a P0"
    )
    p0_on_crash: bool = Field(default=True, description="the candidate failing to load or crashing is a P0")


class Replay(_Strict):
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
}
_ALL_GATES = tuple(DEFAULT_GATES)
DEFAULT_PLAN: dict[str, dict[str, Any]] = {
    "shadow": {"traffic": 0.0, "min_requests": 1000, "min_observed_minutes": 10, "gates": _ALL_GATES},
    "5_percent": {"traffic": 0.05, "min_requests": 150, "min_observed_minutes": 30, "gates": _ALL_GATES},
    "20_percent": {"traffic": 0.2, "min_requests": 500, "min_observed_minutes": 30, "gates": _ALL_GATES},
    "50_percent": {"traffic": 0.5, "min_requests": 2000, "min_observed_minutes": 60, "gates": _ALL_GATES},
    "production": {"traffic": 1.0, "min_requests": 5000, "min_observed_minutes": 60, "gates": _ALL_GATES},
}


class Rollout(_Strict):
    """The stage plan, in order (``stages`` is a mapping: iterating it gives the stage names in
    order, ``stage in stages`` tests a name), the gates the stages name, and the rules around them."""

    stages: dict[str, StagePlan] = Field(default_factory=lambda: {k: StagePlan(**v) for k, v in DEFAULT_PLAN.items()})
    gates: dict[str, GateDef] = Field(default_factory=lambda: {k: GateDef(**v) for k, v in DEFAULT_GATES.items()})
    slo: Slo = Slo()
    incidents: Incidents = Incidents()
    replay: Replay = Replay()
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
        if not v:
            raise ValueError("expected at least one stage")
        return v

    @model_validator(mode="after")
    def _names_known(self) -> Rollout:
        for stage, plan in self.stages.items():
            for g in plan.gates:
                if g not in self.gates:
                    raise KeyedValueError(
                        f"rollout.stages.{stage}.gates",
                        f"expected gates defined under rollout.gates ({', '.join(self.gates)}), got {g!r}",
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


class Evaluation(_Strict):
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
        if (
            v == "builtin"
            or re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", v)
            or (v.endswith(".py") and not v.startswith("/"))
        ):
            return v
        raise ValueError('expected "builtin", "package.module:function" or a relative path to a .py script')


class Mirror(_Strict):
    interval_seconds: float = Field(default=10.0, gt=0)
    target: str | None = None


class JournalSettings(_Strict):
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


class WorkspaceLayout(_Strict):
    planning: str = "reports/planning"
    execution: str = "reports/execution"
    handoff: str = "reports/handoff"
    metrics: str = "runs/report/metrics.json"
    deployment: str = "deployment"
    research: str = "research"
    validation_set: str = "data/validation_set"
    sessions: str = "sessions"
    log: str = "executive.log"


class Tools(_Strict):
    script_folders: tuple[str, ...] = ("research",)
    script_timeout_s: float = Field(default=300.0, gt=0)
    script_output_max_chars: int = Field(default=20000, gt=0)


class CoordinationConfig(_Strict):
    schedule: Schedule = Schedule()
    rollout: Rollout = Rollout()
    evaluation: Evaluation = Evaluation()
    mirror: Mirror = Mirror()
    journal: JournalSettings = JournalSettings()
    workspace: WorkspaceLayout = WorkspaceLayout()
    tools: Tools = Tools()

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


# --------------------------------------------------------------------------- loading


def _describe(err: dict[str, Any]) -> str:
    keyed = (err.get("ctx") or {}).get("error")
    if isinstance(keyed, KeyedValueError):
        return f"{keyed.key}: {keyed.message}"
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"{loc}: unknown key (expected one of the documented keys)"
    if kind == "missing":
        return f"{loc}: missing (expected a value)"
    got = err.get("input")
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    shown = json.dumps(got, default=str) if not isinstance(got, (dict, list)) else type(got).__name__
    return f"{loc}: {msg[0].lower() + msg[1:]}, got {shown}"


def _load(path: Path, model: type[BaseModel]):
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found (expected a YAML file)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: (top level): expected a mapping, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        lines = [_describe(err) for err in e.errors()]
        raise ConfigError(f"{path}: " + "; ".join(lines)) from None


def load_meeting_config(path: Path) -> MeetingConfig:
    return _load(path, MeetingConfig)


def load_coordination_config(path: Path) -> CoordinationConfig:
    return _load(path, CoordinationConfig)


class Settings:
    """Both configs, the project root they came from, and a hash of their contents."""

    def __init__(self, project_root: Path, meeting_path: Path | None = None, coordination_path: Path | None = None):
        self.project_root = Path(project_root).resolve()
        self.meeting_path = Path(meeting_path or self.project_root / "configs" / "meeting.yaml")
        self.coordination_path = Path(
            coordination_path or self.project_root / "configs" / "autonomous_coordination.yaml"
        )
        self.meeting = load_meeting_config(self.meeting_path)
        self.coordination = load_coordination_config(self.coordination_path)
        for name, agent in self.meeting.agents.items():
            if not self.prompt_path(name).is_file():
                raise ConfigError(
                    f"{self.meeting_path}: agents.{name}.prompt: expected an existing prompt file, got {agent.prompt!r}"
                )

    def prompt_path(self, agent: str) -> Path:
        p = Path(self.meeting.agents[agent].prompt)
        return p if p.is_absolute() else self.project_root / p

    def config_hash(self) -> str:
        h = hashlib.sha256()
        for p in (self.meeting_path, self.coordination_path):
            h.update(p.read_bytes())
        return h.hexdigest()[:16]


def default_project_root() -> Path:
    """The checkout that holds ``configs/`` and ``prompts/`` (the package's parent folder)."""
    return Path(__file__).resolve().parent.parent
