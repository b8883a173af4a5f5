"""``import cvagents``, the monitors' modules and ``status`` load no LLM SDK and no torch; an SDK
is loaded when the first agent on it is built (checked in a fresh interpreter each)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("openai", "anthropic", "google.genai", "torch", "pandas", "matplotlib", "genai_prices")
PROBE = """
import json, sys
{code}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def loaded_after(code: str, env: dict[str, str] | None = None) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(code=code, heavy=HEAVY)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "code",
    [
        "import cvagents",
        "import cvagents.ui",
        "from cvagents.ui.dashboard import SystemDashboard, monitor_execution, monitor_planning",
        "from cvagents.ui.status import collect_status, format_status",
        "import cvagents.llm.factory, cvagents.runner",
    ],
)
def test_start_up_and_monitors_load_no_sdk_and_no_torch(code):
    assert loaded_after(code) == []


BUILD = """
from cvagents.config import AgentConfig, CallDefaults
from cvagents.llm.factory import build_provider
from cvagents.offline.provider import OfflineProvider
keys = {{"OPENAI_API_KEY": "sk-dummy-000000000000", "ANTHROPIC_API_KEY": "sk-ant-dummy-000000000000",
         "GOOGLE_API_KEY": "AIzaDummy000000000000"}}
cfg = AgentConfig(team="planning", role="r", provider={provider!r}, model="m-x", fallback_model="m-y",
                  prompt="p.md")
agent = build_provider("a", cfg, CallDefaults(), keys=keys, offline_provider=OfflineProvider())
real = agent.chain[0]
"""


@pytest.mark.parametrize(
    ("provider", "sdk"), [("openai", "openai"), ("anthropic", "anthropic"), ("gemini", "google.genai")]
)
def test_an_sdk_is_loaded_on_the_first_call_not_when_the_agent_is_built(provider, sdk):
    build = BUILD.format(provider=provider)
    assert loaded_after(build) == []
    assert loaded_after(build + "agent.close()") == []  # a never-used provider has nothing to close
    assert loaded_after(build + "real._client") == [sdk]  # what the first call does


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_the_lazy_client_is_made_once_and_shared_with_the_fallback_model(provider):
    from cvagents.config import AgentConfig, CallDefaults
    from cvagents.llm.factory import build_provider
    from cvagents.offline.provider import OfflineProvider

    keys = {
        "OPENAI_API_KEY": "sk-dummy-000000000000",
        "ANTHROPIC_API_KEY": "sk-ant-dummy-000000000000",
        "GOOGLE_API_KEY": "AIzaDummy000000000000",
    }
    cfg = AgentConfig(team="planning", role="r", provider=provider, model="m-x", prompt="p.md")
    real = build_provider("a", cfg, CallDefaults(), keys=keys, offline_provider=OfflineProvider()).chain[0]
    other = real.with_model("m-y")
    with ThreadPoolExecutor(8) as pool:
        clients = list(pool.map(lambda p: p._client, [real, other] * 8))
    assert all(c is clients[0] for c in clients)  # one client, however many threads ask first
    real.close()
    other.close()  # closing the shared client twice is harmless


def test_building_the_shipped_team_loads_no_sdk_and_prices_from_the_kept_list(tmp_path):
    code = f"""
import os
os.environ.update(OPENAI_API_KEY="sk-dummy-000000000000", ANTHROPIC_API_KEY="sk-ant-dummy-000000000000",
                  GOOGLE_API_KEY="AIzaDummy000000000000")
from cvagents.config import Settings
from cvagents.llm.cost import CostLedger
from cvagents.planning.team import build_teams
from cvagents.runner import provider_factory
settings = Settings({str(ROOT)!r})
teams = build_teams(settings, provider_factory(settings, "configured", strict=True,
                                               ledger=CostLedger(settings.meeting.budgets)))
assert len(teams.planning) + len(teams.executive) == 12
"""
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    assert loaded_after(code, env) == ["genai_prices"]  # the budget check prices the models from the list
    assert loaded_after(code, env) == []  # ... which the next start-up reads from what the first kept
