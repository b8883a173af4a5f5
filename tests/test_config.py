import pytest
import yaml

from cvagents.config import (
    EXECUTIVE_ROLES,
    PLANNING_ROLES,
    ConfigError,
    Settings,
    load_coordination_config,
    load_meeting_config,
)


def test_shipped_configs_load(project_root):
    s = Settings(project_root)
    assert set(s.meeting.planning_agents()) == set(PLANNING_ROLES)
    assert set(s.meeting.executive_agents()) == set(EXECUTIVE_ROLES)
    # the guide's mapping of roles to providers
    providers = {n: a.provider for n, a in s.meeting.agents.items()}
    assert providers["moderator"] == providers["pre_architect"] == providers["data_analyst"] == "anthropic"
    assert providers["tech_analysis"] == providers["critic"] == "openai"
    assert providers["cotrr_team"] == "gemini"
    assert (
        providers["ops_commander"] == providers["latency_analyst"] == providers["integration_engineer"] == "anthropic"
    )
    assert providers["infra_guardian"] == providers["compliance_monitor"] == providers["rollback_officer"] == "openai"
    c = s.coordination
    assert c.schedule.planning_interval_minutes == 30 and c.schedule.heartbeat_minutes == 5
    assert c.schedule.actions_per_heartbeat == 3
    # issue 4: the stage plan is a mapping, in order; the guide's thresholds are gates on metrics
    assert (
        tuple(c.rollout.stages) == c.rollout.names == ("shadow", "5_percent", "20_percent", "50_percent", "production")
    )
    assert [p.traffic for p in c.rollout.stages.values()] == [0.0, 0.05, 0.2, 0.5, 1.0]
    g = c.rollout.gates
    assert (g["ndcg_at_10"].metric, g["ndcg_at_10"].op, g["ndcg_at_10"].threshold) == (
        "ndcg_at_10_ci95_low",
        ">=",
        0.72,
    )
    assert (g["latency_p95_ms"].op, g["latency_p95_ms"].threshold) == ("<", 50.0)
    assert (g["slo_compliance"].threshold, g["p0_incidents"].threshold, g["p0_incidents"].critical) == (0.99, 0, True)
    assert g["rollback_test"].threshold is True and c.mirror.interval_seconds == 10


def _edit(path, fn):
    data = yaml.safe_load(path.read_text())
    fn(data)
    path.write_text(yaml.safe_dump(data))


def test_wrong_type_names_file_key_and_expectation(config_copy):
    p = config_copy / "configs" / "autonomous_coordination.yaml"
    _edit(p, lambda d: d["schedule"].__setitem__("heartbeat_minutes", "often"))
    with pytest.raises(ConfigError) as e:
        load_coordination_config(p)
    msg = str(e.value)
    assert str(p) in msg and "schedule.heartbeat_minutes" in msg and "number" in msg and '"often"' in msg


def test_unknown_key_is_refused(config_copy):
    p = config_copy / "configs" / "meeting.yaml"
    _edit(p, lambda d: d["agents"]["critic"].__setitem__("temprature", 0.3))
    with pytest.raises(ConfigError) as e:
        load_meeting_config(p)
    assert str(p) in str(e.value) and "agents.critic.temprature: unknown key" in str(e.value)


def test_bad_provider_lists_choices(config_copy):
    p = config_copy / "configs" / "meeting.yaml"
    _edit(p, lambda d: d["agents"]["critic"].__setitem__("provider", "gpt"))
    with pytest.raises(ConfigError) as e:
        load_meeting_config(p)
    assert "agents.critic.provider" in str(e.value) and "'anthropic'" in str(e.value) and '"gpt"' in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_meeting_config(tmp_path / "nope.yaml")
    assert "nope.yaml: file not found" in str(e.value)


def test_missing_prompt_file(config_copy):
    (config_copy / "prompts" / "planning_team" / "critic.md").unlink()
    with pytest.raises(ConfigError) as e:
        Settings(config_copy)
    assert "agents.critic.prompt" in str(e.value) and "critic.md" in str(e.value)


def test_timing_bounds_checked(config_copy):
    p = config_copy / "configs" / "autonomous_coordination.yaml"
    _edit(p, lambda d: d["schedule"]["adaptive_timing"].__setitem__("min_planning_interval_minutes", 45))
    with pytest.raises(ConfigError) as e:
        load_coordination_config(p)
    assert "min_planning_interval_minutes" in str(e.value)


def test_not_a_mapping(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("- a\n- b\n")
    with pytest.raises(ConfigError) as e:
        load_meeting_config(p)
    assert "expected a mapping" in str(e.value)
