"""The schema of ``configs/meeting.yaml``: the agents (team, role, provider, model, prompt), the
call defaults, the meeting protocol, prices and budgets."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from cvagents.config.base import Strict

ProviderName = Literal["anthropic", "openai", "gemini", "offline"]
PLANNING_ROLES = ("moderator", "pre_architect", "data_analyst", "tech_analysis", "critic", "cotrr_team")
EXECUTIVE_ROLES = (
    "ops_commander",
    "infra_guardian",
    "latency_analyst",
    "compliance_monitor",
    "integration_engineer",
    "rollback_officer",
)


class AgentConfig(Strict):
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


class CallDefaults(Strict):
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=4, ge=0)
    max_tokens: int = Field(default=1500, gt=0)
    max_tool_steps: int = Field(default=6, ge=1)


class MeetingProtocol(Strict):
    rounds: int = Field(default=1, ge=1, le=5)
    max_actions: int = Field(default=20, ge=1, le=50)
    synthesis_retries: int = Field(default=2, ge=0)
    fallback_moderator: str = Field(
        default="offline",
        description="'offline', or a planning agent whose provider synthesises when the moderator's is down",
    )
    summaries_in_context: int = Field(default=3, ge=0)


class Price(Strict):
    """USD per million tokens. ``cached_input`` (cache reads) and ``cache_write_input`` (cache
    writes) left at 0 mean "not given": those tokens are charged at ``input``."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float = Field(default=0.0, ge=0)
    cache_write_input: float = Field(default=0.0, ge=0)


class Budgets(Strict):
    per_meeting_usd: float | None = Field(default=None, ge=0)
    per_day_usd: float | None = Field(default=None, ge=0)


class MeetingConfig(Strict):
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
