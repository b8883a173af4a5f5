"""Which provider serves each agent, as the run says it in its log, ``session.json``
(``agents``), every meeting summary and ``cvagents status``: an agent that fell back to the
offline provider (no API key, ``--provider configured``) is named there with why, so a team
that is partly offline never reads as all active; a run on a local model (``--local-model``,
``defaults.local_model``) is named there with its server and model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cvagents.config import LocalModel

if TYPE_CHECKING:  # a type only: the monitors read rosters without loading the team's code
    from cvagents.planning.team import Agent

__all__ = ["roster", "fallbacks", "local_models", "summary", "describe"]


def roster(agents: Mapping[str, Agent], local: LocalModel | None = None) -> dict[str, dict[str, Any]]:
    """``{agent: {"provider", "model", "configured", "fallback", "base_url", "local"}}``: the
    provider serving the agent and its model, the provider meeting.yaml names for it, why the
    offline provider stands in for that one (``ManagedProvider.fallback``; None: it does not),
    the server its config names (None: the provider's own), and whether that is the run's
    ``local`` model (``MeetingConfig.on_local_model``)."""
    return {
        name: {
            "provider": a.provider.name,
            "model": a.provider.model,
            "configured": a.config.provider,
            "fallback": getattr(a.provider, "fallback", None),
            "base_url": a.config.base_url,
            "local": local is not None and (a.config.base_url, a.config.model) == (local.base_url, local.model),
        }
        for name, a in sorted(agents.items())
    }


def fallbacks(agents: Mapping[str, Mapping[str, Any]] | None) -> dict[str, str]:
    """The agents of a roster that fell back to the offline provider, with why."""
    return {name: str(a["fallback"]) for name, a in (agents or {}).items() if a.get("fallback")}


def local_models(agents: Mapping[str, Mapping[str, Any]] | None) -> dict[str, str]:
    """The agents of a roster served by the run's local model: ``{agent: "MODEL at URL"}``."""
    return {
        name: f"{a.get('model')} at {a.get('base_url')}"
        for name, a in (agents or {}).items()
        if a.get("local") and not a.get("fallback") and a.get("provider") == a.get("configured")
    }


def summary(agents: Mapping[str, Mapping[str, Any]]) -> str:
    """How many agents are on the local model (which, at which URL) or on their configured
    provider, how many on the offline one as the run asked (``--provider offline``), and who
    fell back to it and why (the log, the monitors, ``cvagents status``)."""
    fell = fallbacks(agents)
    asked = [n for n, a in agents.items() if n not in fell and a.get("provider") != a.get("configured")]
    local = local_models(agents)
    rest = len(agents) - len(fell) - len(asked) - len(local)
    if local:
        line = f"{len(local)} of {len(agents)} on the local model {', '.join(sorted(set(local.values())))}"
        line += f"; {rest} on their configured provider" if rest else ""
    else:
        line = f"{rest} of {len(agents)} on their configured provider"
    if asked:
        line += f"; {len(asked)} on the offline provider as the run asked (--provider offline)"
    if not fell:
        return line
    by_why: dict[str, list[str]] = {}
    for name, why in fell.items():
        by_why.setdefault(why, []).append(name)
    said = "; ".join(f"{', '.join(names)} ({why})" for why, names in by_why.items())
    return f"{line}; {len(fell)} fell back to the offline provider: {said}"


def describe(agents: Mapping[str, Mapping[str, Any]]) -> str:
    """``summary`` as the run's log line."""
    return f"{'⚠️' if fallbacks(agents) else '🤖'} Agents: {summary(agents)}"
