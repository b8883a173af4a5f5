"""An agent that fell back to the offline provider (``--provider configured``, no API key) is
said in the run's log, every meeting summary, ``session.json`` (``agents``) and ``status``: a
team that is partly offline never reads as all active."""

from __future__ import annotations

import json

from cvagents.runner import run_system
from cvagents.secrets import STANDARD_KEY_NAMES
from cvagents.ui.status import collect_status, format_status


def test_agents_on_the_offline_provider_for_lack_of_a_key_are_named_everywhere(
    seeded_workspace, config_copy, monkeypatch
):
    for name in (*STANDARD_KEY_NAMES, "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "GOOGLE_GEMINI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    meeting = config_copy / "configs" / "meeting.yaml"  # the moderator is on offline by choice: no fallback
    text = meeting.read_text()
    meeting.write_text(text.replace("provider: anthropic", "provider: offline", 1))
    ws = seeded_workspace
    result = run_system(
        ws,
        provider="configured",
        meetings=1,
        project_root=config_copy,
        manual_clock=True,
        start_time="2025-01-01T00:00:00",
        console=False,
    )
    assert result["status"] == "finished"
    session = json.loads(next((ws / "sessions").glob("session_*/session.json")).read_text())
    agents = session["agents"]
    assert len(agents) == 12 and session["providers"]
    assert agents["moderator"] == {
        "provider": "offline",
        "model": agents["moderator"]["model"],
        "configured": "offline",
        "fallback": None,
        "base_url": None,  # the provider's own server
        "local": False,  # not the run's local model (--local-model)
    }
    assert agents["pre_architect"]["configured"] == "anthropic" and agents["pre_architect"]["provider"] == "offline"
    assert agents["pre_architect"]["fallback"] == "no API key (ANTHROPIC_API_KEY)"
    assert agents["ops_commander"]["fallback"].startswith("no API key (")
    fell = sorted(n for n, a in agents.items() if a["fallback"])
    assert len(fell) == 11 and "moderator" not in fell

    log = (ws / "executive.log").read_text(encoding="utf-8")
    said = [line for line in log.splitlines() if "Agents:" in line]
    assert len(said) == 1 and "1 of 12 on their configured provider; 11 fell back to the offline provider" in said[0]
    assert "pre_architect" in said[0] and "(no API key (ANTHROPIC_API_KEY))" in said[0]

    summary = next((ws / "reports" / "planning").glob("summary_meeting_*.md")).read_text(encoding="utf-8")
    line = next(x for x in summary.splitlines() if "On the offline provider instead of their configured one" in x)
    assert "pre_architect: no API key (ANTHROPIC_API_KEY)" in line and "moderator" not in line

    s = collect_status(ws)
    assert s["sessions"][-1]["fallbacks"]["pre_architect"] == "no API key (ANTHROPIC_API_KEY)"
    assert "11 fell back to the offline provider" in format_status(s)


def test_a_run_on_the_offline_provider_by_choice_says_so_and_never_all_configured(project_root):
    from cvagents.config import Settings
    from cvagents.llm.cost import CostLedger
    from cvagents.planning.team import build_teams
    from cvagents.run.roster import describe, fallbacks, roster
    from cvagents.runner import provider_factory

    s = Settings(project_root)
    teams = build_teams(s, provider_factory(s, "offline", strict=False, ledger=CostLedger(s.meeting.budgets)))
    agents = roster(teams.all())
    assert not fallbacks(agents) and {a["provider"] for a in agents.values()} == {"offline"}
    assert describe(agents) == (
        "🤖 Agents: 0 of 12 on their configured provider; 12 on the offline provider as the run asked (--provider offline)"
    )
