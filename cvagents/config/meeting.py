"""The schema of ``configs/meeting.yaml``: the agents (team, role, provider, model, prompt), the
call defaults, the meeting protocol, prices and budgets; and the one switch that puts every agent
on a local OpenAI-compatible server (``defaults.local_model``, ``cvagents run --local-model``)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

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
    tool_call_parsing: Literal["strict", "lenient"] = Field(
        default="strict",
        description="lenient: a tool call the model wrote as JSON text is parsed, checked and run (recorded as recovered)",
    )


def server_url(value: str) -> str:
    """``value`` as the base URL of an OpenAI-compatible server (no trailing ``/``), else
    ValueError. A user:password in it is refused: the URL is written to the session's records."""
    url = value.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
    if not url or parts.scheme not in ("http", "https") or not host:
        raise ValueError("expected the http(s) URL of an OpenAI-compatible server, e.g. http://127.0.0.1:11434/v1")
    if parts.username or parts.password:
        raise ValueError("expected a URL without user:password@ (it is written to the session's records)")
    if parts.query or parts.fragment:
        raise ValueError("expected a base URL without ?query or #fragment, e.g. http://127.0.0.1:11434/v1")
    return url


class LocalModel(Strict):
    """Every agent, planning and executive, on one OpenAI-compatible server, with settings a small
    model on a CPU server can meet (the *local preset*; each value can be set here).

    Applied by ``MeetingConfig.on_local_model``: each agent's provider becomes ``openai`` at
    ``base_url`` with ``model``, no fallback model (the chain is model -> offline), no key
    (a local server accepts any); the preset's values become its timeout, retries and output
    limit, and the call defaults'."""

    base_url: str = Field(description="the server's OpenAI-compatible base URL, e.g. http://127.0.0.1:11434/v1")
    model: str = Field(min_length=1, description="the model name the server serves, e.g. qwen2.5:1.5b-instruct")
    # a CPU server takes minutes for one long answer, and queues the meeting's parallel contributions
    timeout_s: float = Field(default=600.0, gt=0)
    # a retry after a timeout starts the whole generation again: a failed call falls over to offline
    max_retries: int = Field(default=0, ge=0)
    max_tokens: int = Field(default=512, gt=0, description="contributions and executive steps")
    synthesis_max_tokens: int = Field(default=1536, gt=0, description="the moderator's plan (JSON)")
    max_tool_steps: int = Field(default=4, ge=1, description="model -> tools rounds per executive action")
    max_actions: int = Field(default=8, ge=1, le=50, description="actions per plan (meeting.max_actions)")

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return server_url(v)

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("expected the name of the model the server serves")
        return v.strip()


class CallDefaults(Strict):
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=4, ge=0)
    max_tokens: int = Field(default=1500, gt=0)
    max_tool_steps: int = Field(default=6, ge=1)
    local_model: LocalModel | None = None


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
    defaults: CallDefaults = Field(default_factory=CallDefaults)
    meeting: MeetingProtocol = Field(default_factory=MeetingProtocol)
    agents: dict[str, AgentConfig]
    pricing: dict[str, Price] = {}
    budgets: Budgets = Field(default_factory=Budgets)

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

    def on_local_model(self, local: LocalModel | None = None) -> MeetingConfig:
        """This config with every agent on ``local`` (default: ``defaults.local_model``; neither:
        unchanged). The local model is priced at 0 unless ``pricing`` prices it: it costs no API
        money, and the budgets stay valid. Other per-agent settings (role, prompt ...) stay."""
        local = local or self.defaults.local_model
        if local is None:
            return self
        agents = {
            name: a.model_copy(
                update={
                    "provider": "openai",
                    "model": local.model,
                    "base_url": local.base_url,
                    "fallback_model": None,
                    "api_key_env": None,
                    "timeout_s": local.timeout_s,
                    "max_retries": local.max_retries,
                    "max_tokens": local.synthesis_max_tokens if name == "moderator" else local.max_tokens,
                }
            )
            for name, a in self.agents.items()
        }
        defaults = self.defaults.model_copy(
            update={
                "timeout_s": local.timeout_s,
                "max_retries": local.max_retries,
                "max_tokens": local.max_tokens,
                "max_tool_steps": local.max_tool_steps,
                "local_model": local,
            }
        )
        return self.model_copy(
            update={
                "agents": agents,
                "defaults": defaults,
                "meeting": self.meeting.model_copy(update={"max_actions": local.max_actions}),
                "pricing": {local.model: Price(input=0.0, output=0.0), **self.pricing},
            }
        )

    def planning_agents(self) -> dict[str, AgentConfig]:
        return {n: a for n, a in self.agents.items() if a.team == "planning"}

    def executive_agents(self) -> dict[str, AgentConfig]:
        return {n: a for n, a in self.agents.items() if a.team == "executive"}
