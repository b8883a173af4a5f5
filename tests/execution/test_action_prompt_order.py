"""The executive's action prompt is ordered for the providers' prompt caches: the fixed
instruction and the rollout state (stable keys first) before the action, which is new with
every request."""

from agent_backend import FRESH_STATE as STATE
from fakes import ScriptedProvider

from cvagents.config import CoordinationConfig, Settings
from cvagents.execution.executive import Executive
from cvagents.execution.tools import ToolContext, default_registry
from cvagents.planning.handoff import HandoffAction
from cvagents.planning.team import build_teams
from cvagents.workspace import Workspace


def action(n: int, text: str) -> HandoffAction:
    return HandoffAction(
        id=n, action=text, owner="ops_commander", priority="high", estimated_duration="5min", success_criteria="done"
    )


def test_two_actions_of_one_agent_share_the_instruction_and_state_prefix(tmp_path, project_root):
    cfg = CoordinationConfig()
    ws = Workspace.from_config(tmp_path / "ws", cfg).create(project_root)
    p = ScriptedProvider(otherwise="RESULT: failed — nothing to do")
    teams = build_teams(Settings(project_root), lambda n, c: p)
    ex = Executive(teams.executive, default_registry(), lambda key: ToolContext(ws, cfg, action_key=key))
    ex.carry_out(action(1, "Collect metrics for the shadow stage."), "meeting_a", STATE)
    ex.carry_out(action(2, "Run the rollback drill."), "meeting_a", STATE)
    first, second = (r.messages[0].content for r in p.requests_for("ops_commander"))
    n = 0
    while first[n] == second[n]:
        n += 1
    shared = second[:n]
    assert shared.startswith("Carry the action below out with your tools")
    assert '"thresholds"' in shared and '"stages"' in shared and "```\n\n# Action " in shared
    assert "Run the rollback drill." not in shared and p.requests[0].tools == p.requests[-1].tools
