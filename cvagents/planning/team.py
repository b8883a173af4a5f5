"""The two teams, built from ``configs/meeting.yaml`` and ``prompts/``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cvagents.config import AgentConfig, Settings
from cvagents.llm.base import Provider
from cvagents.offline.provider import OfflineProvider


@dataclass
class Agent:
    name: str
    config: AgentConfig
    system_prompt: str
    provider: Provider

    @property
    def team(self) -> str:
        return self.config.team

    @property
    def title(self) -> str:
        return self.name.replace("_", " ").title()


ProviderFactory = Callable[[str, AgentConfig], Provider]


def offline_factory(name: str, cfg: AgentConfig) -> Provider:
    return OfflineProvider()


@dataclass
class Teams:
    planning: dict[str, Agent]
    executive: dict[str, Agent]

    @property
    def moderator(self) -> Agent:
        return self.planning["moderator"]

    def all(self) -> dict[str, Agent]:
        return {**self.planning, **self.executive}


def build_teams(settings: Settings, factory: ProviderFactory = offline_factory) -> Teams:
    agents = {
        name: Agent(name, cfg, settings.prompt_path(name).read_text(encoding="utf-8"), factory(name, cfg))
        for name, cfg in settings.meeting.agents.items()
    }
    return Teams(
        planning={n: a for n, a in agents.items() if a.team == "planning"},
        executive={n: a for n, a in agents.items() if a.team == "executive"},
    )
