import json

import pytest
import yaml

from cvagents.config import (
    EXECUTIVE_ROLES,
    PLANNING_ROLES,
    ConfigError,
    Settings,
    check_run_options,
    check_session_id,
    load_coordination_config,
    load_meeting_config,
    valid_session_id,
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
    path.write_text(yaml.safe_dump(data, sort_keys=False))


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


_AGENT_KEYS = (
    "team, role, provider, model, prompt, base_url, fallback_model, api_key_env, timeout_s, max_retries, max_tokens, "
    "tool_call_parsing"
)


def test_a_typo_names_the_near_key_and_lists_the_allowed_ones(config_copy):
    """The misspelt key's near match, the keys allowed at that place, and no second complaint that
    the key it was meant to be is missing."""
    p = config_copy / "configs" / "meeting.yaml"

    def misspell(d):
        d["agents"]["critic"]["provder"] = d["agents"]["critic"].pop("provider")

    _edit(p, misspell)
    with pytest.raises(ConfigError) as e:
        load_meeting_config(p)
    assert str(e.value) == (
        f"{p}: agents.critic.provder: unknown key; did you mean 'provider'? (allowed: {_AGENT_KEYS})"
    )


@pytest.mark.parametrize(
    "edit, says",
    [
        (
            lambda d: d["rollout"]["stages"]["shadow"].__setitem__("min_request", 5),
            "rollout.stages.shadow.min_request: unknown key; did you mean 'min_requests'? "
            "(allowed: traffic, min_requests, min_observed_minutes, gates)",
        ),
        (
            lambda d: d["tools"].setdefault("script_limits", {}).__setitem__("cpu", 5),
            "tools.script_limits.cpu: unknown key; did you mean 'cpu_seconds'? "
            "(allowed: cpu_seconds, memory_mb, file_size_mb, open_files)",
        ),
        (
            lambda d: d.__setitem__("zzz", 1),
            "zzz: unknown key (allowed: schedule, rollout, evaluation, serving, compute, mirror, journal, workspace, tools)",
        ),
    ],
    ids=["in-a-mapping-of-stages", "a-prefix", "nothing-near"],
)
def test_unknown_keys_at_any_depth_name_what_is_allowed_there(config_copy, edit, says):
    p = config_copy / "configs" / "autonomous_coordination.yaml"
    _edit(p, edit)
    with pytest.raises(ConfigError) as e:
        load_coordination_config(p)
    assert str(e.value) == f"{p}: {says}"


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


# ------------------------------------------------------------- issue 12: invariants at load


def _coord_error(config_copy, edit) -> str:
    p = config_copy / "configs" / "autonomous_coordination.yaml"
    _edit(p, edit)
    with pytest.raises(ConfigError) as e:
        load_coordination_config(p)
    msg = str(e.value)
    assert msg.startswith(str(p)) and "\n" not in msg
    return msg


def _reorder(d, names):
    d["rollout"]["stages"] = {n: d["rollout"]["stages"][n] for n in names}


@pytest.mark.parametrize(
    "edit, key, expected",
    [
        # production first: the first deployment would serve every user with no gate passed
        (
            lambda d: _reorder(d, ["production", "shadow", "5_percent", "20_percent", "50_percent"]),
            "rollout.stages.production.traffic",
            "expected 0",
        ),
        (
            lambda d: _reorder(d, ["shadow", "20_percent", "5_percent", "50_percent", "production"]),
            "rollout.stages.5_percent.traffic",
            "expected more than 20_percent's 0.2",
        ),
        (
            lambda d: d["rollout"]["stages"]["20_percent"].__setitem__("traffic", 0.05),
            "rollout.stages.20_percent.traffic",
            "expected more than 5_percent's 0.05",
        ),
        (
            lambda d: d["rollout"]["stages"].pop("production"),
            "rollout.stages.50_percent.traffic",
            "expected 1.0",
        ),
        (
            lambda d: d["rollout"].__setitem__("stages", {"shadow": {"traffic": 0.0}}),
            "rollout.stages",
            "at least two stages",
        ),
    ],
)
def test_a_stage_plan_out_of_order_is_refused(config_copy, edit, key, expected):
    msg = _coord_error(config_copy, edit)
    assert f"{key}: " in msg and expected in msg


@pytest.mark.parametrize("value", ["/etc", "../elsewhere", "reports/../../up", "~/x", ""])
@pytest.mark.parametrize("key", ["sessions", "deployment", "log"])
def test_layout_paths_stay_inside_the_workspace(config_copy, key, value):
    msg = _coord_error(config_copy, lambda d: d["workspace"].__setitem__(key, value))
    assert f"workspace.{key}: expected a path relative to the workspace and inside it" in msg
    assert json.dumps(value) in msg


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda d: d["tools"].__setitem__("script_folders", ["research", "/usr/lib"]), "tools.script_folders"),
        (lambda d: d["rollout"].__setitem__("artifact_folders", ["../models"]), "rollout.artifact_folders"),
    ],
)
def test_folders_the_tools_use_stay_inside_the_workspace(config_copy, edit, key):
    msg = _coord_error(config_copy, edit)
    assert f"{key}: expected a path relative to the workspace" in msg


def test_a_layout_inside_the_workspace_loads(config_copy):
    p = config_copy / "configs" / "autonomous_coordination.yaml"
    _edit(p, lambda d: d["workspace"].update({"sessions": "state/sessions", "research": "./models"}))
    assert load_coordination_config(p).workspace.sessions == "state/sessions"


def test_a_key_given_twice_names_both_lines(config_copy):
    p = config_copy / "configs" / "autonomous_coordination.yaml"
    lines = p.read_text().splitlines()
    at = lines.index("  heartbeat_minutes: 5             # the Executive Team wakes every 5 minutes")
    lines.insert(at + 2, "  heartbeat_minutes: 1")
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as e:
        load_coordination_config(p)
    msg = str(e.value)
    assert f"{p}: schedule.heartbeat_minutes: given twice (lines {at + 1} and {at + 3})" in msg
    assert "expected each key once" in msg


def test_a_nested_key_given_twice_in_meeting_yaml(tmp_path):
    p = tmp_path / "meeting.yaml"
    p.write_text("agents:\n  moderator:\n    team: planning\n    team: executive\n")
    with pytest.raises(ConfigError) as e:
        load_meeting_config(p)
    assert "agents.moderator.team: given twice (lines 3 and 4)" in str(e.value)


def test_unreadable_config_files_are_one_line_errors(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_bytes(b"agents:\n  moderator: \xff\xfe\n")
    with pytest.raises(ConfigError) as e:
        load_meeting_config(p)
    assert str(e.value) == f"{p}: not UTF-8 text (byte 21); expected a YAML file"
    p.write_text("agents: [1, 2\nother: 3\n")
    with pytest.raises(ConfigError) as e:
        load_meeting_config(p)
    assert str(e.value).startswith(f"{p}: line ") and "not valid YAML" in str(e.value) and "\n" not in str(e.value)


def test_config_error_is_the_package_error_and_a_value_error():
    from cvagents.errors import CVAgentsError

    assert issubclass(ConfigError, CVAgentsError) and issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(
    "value, ok",
    [
        ("20250101_000000_1a2b3c", True),
        ("20251013_200000_ffffff", True),
        ("../../etc", False),
        ("20250101_000000_1a2b3c/../x", False),
        ("20250101_000000_1A2B3C", False),
        ("20250101_000000_1a2b3", False),
        ("crash", False),
        ("", False),
        (None, False),
        (20250101, False),
    ],
)
def test_session_ids_must_match_the_generated_format(value, ok):
    assert valid_session_id(value) is ok
    if ok:
        assert check_session_id(value) == value
    else:
        with pytest.raises(ConfigError) as e:
            check_session_id(value, "MANIFEST.json: extra.session_id")
        assert str(e.value).startswith("MANIFEST.json: extra.session_id: expected a session id")


def test_generated_session_ids_are_valid():
    """Ids made as the coordinator makes them (the clock's stamp, 6 hex digits) pass the check."""
    import uuid
    from datetime import datetime

    from cvagents.clock import stamp

    assert valid_session_id(f"{stamp(datetime(2025, 10, 13, 20, 0))}_{uuid.uuid4().hex[:6]}")


@pytest.mark.parametrize(
    "options, key",
    [
        ({"meetings": -1}, "--meetings"),
        ({"meetings": 0}, "--meetings"),
        ({"time_scale": 0}, "--time-scale"),
        ({"time_scale": -600}, "--time-scale"),
        ({"time_scale": float("nan")}, "--time-scale"),
        ({"time_scale": float("inf")}, "--time-scale"),
    ],
)
def test_run_numbers_are_checked(options, key):
    with pytest.raises(ConfigError) as e:
        check_run_options(**options)
    assert str(e.value).startswith(f"{key}: expected")
    check_run_options(meetings=1, time_scale=0.5)
    check_run_options(meetings=None, time_scale=6000)
