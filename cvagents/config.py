"""Typed configuration from ``configs/meeting.yaml`` and ``configs/autonomous_coordination.yaml``.

Every mistake in a config file ends in one ``ConfigError`` that names the file, the key and what
was expected, e.g. ``configs/meeting.yaml: agents.critic.provider: expected one of 'anthropic',
'openai', 'gemini', 'offline', got 'gpt'``.
"""
from __future__ import annotations

import hashlib
import json
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
    fallback_moderator: str = Field(default="offline", description="'offline', or a planning agent whose provider synthesises when the moderator's is down")
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
    def _teams_complete(self) -> "MeetingConfig":
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
    def _bounds(self) -> "Schedule":
        a = self.adaptive_timing
        if not a.min_planning_interval_minutes <= self.planning_interval_minutes <= a.max_planning_interval_minutes:
            raise ValueError(
                "adaptive_timing: expected min_planning_interval_minutes <= planning_interval_minutes"
                " <= max_planning_interval_minutes"
            )
        if a.min_heartbeat_minutes > self.heartbeat_minutes:
            raise ValueError("adaptive_timing.min_heartbeat_minutes: expected <= heartbeat_minutes")
        return self


class Gates(_Strict):
    ndcg_at_10_min: float = Field(default=0.72, ge=0, le=1)
    latency_p95_ms_max: float = Field(default=50.0, gt=0)
    slo_compliance_min: float = Field(default=0.99, ge=0, le=1)
    p0_incidents_max: int = Field(default=0, ge=0)
    rollback_test_required: bool = True


class Rollout(_Strict):
    stages: tuple[str, ...] = STAGES
    traffic: dict[str, float] = {
        "shadow": 0.0,
        "5_percent": 0.05,
        "20_percent": 0.2,
        "50_percent": 0.5,
        "production": 1.0,
    }
    gates: Gates = Gates()

    @field_validator("stages")
    @classmethod
    def _known_stages(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("expected at least one stage")
        if len(set(v)) != len(v):
            raise ValueError("expected each stage once")
        return v

    @model_validator(mode="after")
    def _traffic_per_stage(self) -> "Rollout":
        missing = [s for s in self.stages if s not in self.traffic]
        if missing:
            raise ValueError(f"traffic: expected a weight for every stage, missing {missing}")
        return self


class Mirror(_Strict):
    interval_seconds: float = Field(default=10.0, gt=0)
    target: str | None = None


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
    mirror: Mirror = Mirror()
    workspace: WorkspaceLayout = WorkspaceLayout()
    tools: Tools = Tools()


# --------------------------------------------------------------------------- loading


def _describe(err: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"{loc}: unknown key (expected one of the documented keys)"
    if kind == "missing":
        return f"{loc}: missing (expected a value)"
    got = err.get("input")
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
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
                    f"{self.meeting_path}: agents.{name}.prompt: expected an existing prompt file, "
                    f"got {agent.prompt!r}"
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
