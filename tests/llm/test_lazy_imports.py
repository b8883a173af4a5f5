"""``import cvagents``, the monitors' modules and ``status`` load no LLM SDK and no torch; an SDK
is loaded when the first agent on it is built (checked in a fresh interpreter each)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("openai", "anthropic", "google.genai", "torch")
PROBE = """
import json, sys
{code}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def loaded_after(code: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(code=code, heavy=HEAVY)], capture_output=True, text=True, check=True
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


def test_an_sdk_is_loaded_when_the_first_agent_on_it_is_built():
    code = """
from cvagents.config import AgentConfig, CallDefaults
from cvagents.llm.factory import build_provider
from cvagents.offline.provider import OfflineProvider
cfg = AgentConfig(team="planning", role="r", provider="openai", model="gpt-x", prompt="p.md")
build_provider("a", cfg, CallDefaults(), keys={"OPENAI_API_KEY": "sk-dummy-000000000000"},
               offline_provider=OfflineProvider())
"""
    assert loaded_after(code) == ["openai"]
