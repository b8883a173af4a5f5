"""``defaults.local_model`` in meeting.yaml (and the ``--local-model`` switch over it): the schema,
what it does to every agent, and the local preset reaching the providers over the wire."""

import pytest
import yaml
from agent_backend import FRESH_STATE
from llm_servers import LLMServer, Reply, error, make_request, openai_completion

from cvagents.config import ConfigError, LocalModel, Settings
from cvagents.llm.base import ProviderError
from cvagents.llm.cost import CostLedger
from cvagents.run.roster import describe, summary
from cvagents.runner import provider_factory, run_system


def _with_local(root, block):
    path = root / "configs" / "meeting.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["defaults"]["local_model"] = block
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("block", "said"),
    [
        (
            {"base_url": "http://127.0.0.1:11434/v1", "modle": "x"},
            "defaults.local_model.modle: unknown key; did you mean 'model'?",
        ),
        ({"model": "x"}, "defaults.local_model.base_url: missing"),
        ({"base_url": "127.0.0.1:11434", "model": "x"}, "defaults.local_model.base_url: expected the http(s) URL"),
        (
            {"base_url": "http://me:secret@127.0.0.1:11434/v1", "model": "x"},
            "defaults.local_model.base_url: expected a URL without user:password@",
        ),
        (
            {"base_url": "http://127.0.0.1:11434/v1", "model": "x", "max_retries": -1},
            "defaults.local_model.max_retries",
        ),
    ],
)
def test_a_bad_local_model_block_names_the_file_and_key(config_copy, block, said):
    path = _with_local(config_copy, block)
    with pytest.raises(ConfigError) as e:
        Settings(config_copy)
    assert str(e.value).startswith(f"{path}: ") and said in str(e.value)


def test_the_yaml_block_puts_every_agent_on_the_server_with_the_preset(config_copy):
    _with_local(config_copy, {"base_url": "http://127.0.0.1:8080/v1/", "model": "qwen2.5-1.5b"})
    m = Settings(config_copy).meeting
    preset = LocalModel(base_url="http://x/v1", model="m")
    assert len(m.agents) == 12
    for name, a in m.agents.items():
        assert (a.provider, a.model, a.base_url) == ("openai", "qwen2.5-1.5b", "http://127.0.0.1:8080/v1")
        assert (a.fallback_model, a.api_key_env) == (None, None)  # model -> offline; no key looked up
        assert (a.timeout_s, a.max_retries) == (preset.timeout_s, preset.max_retries) == (600.0, 0)
        assert a.max_tokens == (1536 if name == "moderator" else 512)
    assert (m.defaults.max_tokens, m.defaults.max_tool_steps, m.meeting.max_actions) == (512, 4, 8)
    assert m.pricing["qwen2.5-1.5b"].input == m.pricing["qwen2.5-1.5b"].output == 0.0
    assert m.agents["critic"].prompt == "prompts/planning_team/critic.md"  # the rest of each agent stays


def test_the_switch_replaces_the_server_and_model_and_keeps_the_yaml_preset(config_copy):
    _with_local(config_copy, {"base_url": "http://127.0.0.1:9/v1", "model": "old", "timeout_s": 900, "max_tokens": 300})
    s = Settings(config_copy, local_model=("http://127.0.0.1:8000/v1", "new"))
    a = s.meeting.agents["ops_commander"]
    assert (a.base_url, a.model, a.timeout_s, a.max_tokens) == ("http://127.0.0.1:8000/v1", "new", 900.0, 300)
    assert s.config_hash() != Settings(config_copy).config_hash()  # the switch is part of the settings


def test_the_preset_reaches_the_providers_over_the_wire(config_copy):
    """No retry that restarts a generation, and the timeout and output limits as sent: a reply
    slower than the block's timeout is given up after one request; a 500 is not retried."""
    with LLMServer("openai") as srv:
        _with_local(config_copy, {"base_url": srv.base_url, "model": "tiny", "timeout_s": 0.5})
        s = Settings(config_copy)
        make = provider_factory(s, "configured", strict=True, ledger=CostLedger(s.meeting.budgets))
        critic, moderator = make("critic", s.meeting.agents["critic"]), make("moderator", s.meeting.agents["moderator"])
        assert [p.name for p in critic.chain] == ["openai", "offline"]

        srv.push(Reply(body=openai_completion("fine", model="tiny")))
        assert critic.complete(make_request(max_tokens=4000)).text == "fine"
        srv.push(Reply(body=openai_completion("plan", model="tiny")))
        moderator.complete(make_request(max_tokens=4000, agent="moderator"))
        sent = [r.json for r in srv.requests]
        assert [(b["model"], b.get("max_tokens")) for b in sent] == [("tiny", 512), ("tiny", 1536)]

        for reply in (Reply(body=openai_completion("too late"), delay_s=3), error("openai", 500, "busy")):
            srv.clear()
            srv.push(reply, Reply(body=openai_completion("a retry's answer")))
            try:
                # the run's state rides along, as in a meeting: a failover's offline answer reads it
                text = critic.complete(make_request(context={"state": FRESH_STATE})).text
            except ProviderError:
                text = None  # failed for good (or, with failover, answered by the offline provider)
            assert text not in ("too late", "a retry's answer")
            assert len(srv.requests) == 1  # tried once: no second generation from the start
            srv._queue.get_nowait()  # the unused reply


def test_the_roster_says_who_is_on_the_local_model():
    url = "http://127.0.0.1:11434/v1"
    local = {
        "provider": "openai",
        "model": "tiny",
        "configured": "openai",
        "fallback": None,
        "base_url": url,
        "local": True,
    }
    agents = {f"a{i}": dict(local) for i in range(11)}
    agents["a11"] = {**local, "provider": "offline", "model": "offline-rules-v1", "fallback": "no API key (X)"}
    assert summary(agents) == (
        f"11 of 12 on the local model tiny at {url}; 1 fell back to the offline provider: a11 (no API key (X))"
    )
    agents["a11"] = {**local, "local": False, "base_url": None, "model": "gpt-4o"}
    assert describe(agents) == f"🤖 Agents: 11 of 12 on the local model tiny at {url}; 1 on their configured provider"
    plain = {n: {**a, "local": False} for n, a in agents.items()}
    assert summary(plain) == "12 of 12 on their configured provider"


def test_a_run_from_the_yaml_block_alone(config_copy, seeded_workspace):
    from agent_backend import AgentBackend

    with LLMServer("openai", responder=AgentBackend(malformed_first_synthesis=False)) as srv:
        _with_local(config_copy, {"base_url": srv.base_url, "model": "from-yaml"})
        result = run_system(
            seeded_workspace, project_root=config_copy, meetings=1, console=False, manual_clock=True, strict=True
        )
    assert result["status"] == "finished"
    posted = [r.json["model"] for r in srv.requests if r.method == "POST"]
    assert len(posted) >= 6 and set(posted) == {"from-yaml"}
    log = (seeded_workspace / "executive.log").read_text()
    assert f"12 of 12 on the local model from-yaml at {srv.base_url}" in log
