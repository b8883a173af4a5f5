"""Which provider serves each agent, as the run says it in its log, ``session.json``
(``agents``), every meeting summary and ``cvagents status``: an agent that fell back to the
offline provider (no API key, ``--provider configured``) is named there with why, so a team
that is partly offline never reads as all active."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cvagents.planning.team import Agent

__all__ = ["roster", "fallbacks", "summary", "describe"]


def roster(agents: Mapping[str, Agent]) -> dict[str, dict[str, Any]]:
    """``{agent: {"provider", "model", "configured", "fallback"}}``: the provider serving the
    agent and its model, the provider meeting.yaml names for it, and why the offline provider
    stands in for that one (``ManagedProvider.fallback``; None: it does not)."""
    return {
        name: {
            "provider": a.provider.name,
            "model": a.provider.model,
            "configured": a.config.provider,
            "fallback": getattr(a.provider, "fallback", None),
        }
        for name, a in sorted(agents.items())
    }


def fallbacks(agents: Mapping[str, Mapping[str, Any]] | None) -> dict[str, str]:
    """The agents of a roster that fell back to the offline provider, with why."""
    return {name: str(a["fallback"]) for name, a in (agents or {}).items() if a.get("fallback")}


def summary(agents: Mapping[str, Mapping[str, Any]]) -> str:
    """How many agents are on their configured provider, how many on the offline one as the run
    asked (``--provider offline``), and who fell back to it and why (the log, the monitors)."""
    fell = fallbacks(agents)
    asked = [n for n, a in agents.items() if n not in fell and a.get("provider") != a.get("configured")]
    line = f"{len(agents) - len(fell) - len(asked)} of {len(agents)} on their configured provider"
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
