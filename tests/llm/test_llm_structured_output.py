"""Native structured output: ``LLMRequest.response_schema`` in each API's own request field,
and an OpenAI-compatible server that cannot do it is asked without it, once and for all."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from llm_servers import (  # noqa: E402
    LLMServer,
    Reply,
    anthropic_message,
    gemini_response,
    make_request,
    openai_completion,
    rejects_json_schema,
)

from cvagents.llm.anthropic_provider import AnthropicProvider  # noqa: E402
from cvagents.llm.gemini_provider import GeminiProvider  # noqa: E402
from cvagents.llm.openai_provider import OpenAIProvider  # noqa: E402
from cvagents.planning import handoff as hf  # noqa: E402
from cvagents.planning.meeting import SYNTHESIS_SCHEMA  # noqa: E402

PLAN = {
    "decisions": [{"decision": "hold shadow", "rationale": "gate pending"}],
    "go_no_go": None,
    "risks": [],
    "cross_pollination": [],
    "actions": [
        {
            "action": "Evaluate the candidate in shadow",
            "owner": "ops_commander",
            "priority": "high",
            "estimated_duration": "10 min",
            "success_criteria": "NDCG@10 measured",
        }
    ],
}


def synthesis_request():
    return dataclasses.replace(make_request(), purpose="synthesis", response_schema=SYNTHESIS_SCHEMA)


def closed_everywhere(schema, *, all_required=True):
    """Every object node has additionalProperties false (and all its properties required)."""
    nodes = [schema]
    seen = 0
    while nodes:
        n = nodes.pop()
        if isinstance(n, dict):
            if "properties" in n:
                seen += 1
                assert n["additionalProperties"] is False, n
                if all_required:
                    assert sorted(n["required"]) == sorted(n["properties"]), n
            nodes.extend(n.values())
        elif isinstance(n, list):
            nodes.extend(n)
    return seen


def test_the_synthesis_schema_is_the_handoff_models():
    assert SYNTHESIS_SCHEMA == hf.Synthesis.model_json_schema()


def test_openai_sends_a_strict_json_schema_response_format():
    with LLMServer("openai") as srv:
        srv.push(Reply(body=openai_completion(json.dumps(PLAN))))
        p = OpenAIProvider("gpt-test", api_key="sk-test-0123456789", base_url=srv.base_url, max_retries=0)
        res = p.complete(synthesis_request())
        fmt = srv.requests[0].json["response_format"]
    assert hf.Synthesis.model_validate_json(res.text).actions[0].owner == "ops_commander"
    assert fmt["type"] == "json_schema"
    js = fmt["json_schema"]
    assert js["name"] == "Synthesis" and js["strict"] is True
    assert closed_everywhere(js["schema"]) == 4  # Synthesis, Decision, GoNoGo, PlannedAction
    assert "minLength" not in json.dumps(js["schema"]) and '"default"' not in json.dumps(js["schema"])
    assert js["schema"]["$defs"]["PlannedAction"]["properties"]["priority"]["enum"] == ["high", "medium", "low"]


def test_a_plain_request_carries_no_response_format():
    with LLMServer("openai") as srv:
        srv.push(Reply(body=openai_completion("prose")))
        OpenAIProvider("gpt-test", api_key="k", base_url=srv.base_url, max_retries=0).complete(make_request())
        assert "response_format" not in srv.requests[0].json


def test_anthropic_sends_output_config_json_schema():
    with LLMServer("anthropic") as srv:
        srv.push(Reply(body=anthropic_message(json.dumps(PLAN))))
        p = AnthropicProvider("claude-test", api_key="sk-ant-test-0123456789", base_url=srv.base_url, max_retries=0)
        res = p.complete(synthesis_request())
        body = srv.requests[0].json
    assert hf.Synthesis.model_validate_json(res.text).actions
    fmt = body["output_config"]["format"]
    assert fmt["type"] == "json_schema"
    assert closed_everywhere(fmt["schema"], all_required=False) == 4
    assert "actions" in fmt["schema"]["properties"]
    action = fmt["schema"]["$defs"]["PlannedAction"]["properties"]["action"]
    assert "minLength" not in action and "minLength" in action["description"]  # the SDK's transform moved it


def test_gemini_sends_a_json_response_schema():
    with LLMServer("gemini") as srv:
        srv.push(Reply(body=gemini_response(json.dumps(PLAN))))
        p = GeminiProvider("gemini-test", api_key="AIzaTest0123456789", base_url=srv.base_url)
        res = p.complete(synthesis_request())
        cfg = srv.requests[0].json["generationConfig"]
    assert hf.Synthesis.model_validate_json(res.text).actions
    assert cfg["responseMimeType"] == "application/json"
    assert cfg["responseJsonSchema"] == SYNTHESIS_SCHEMA


def test_a_server_rejecting_json_schema_is_asked_without_it_and_it_is_remembered():
    with LLMServer("openai") as srv:
        srv.push(
            rejects_json_schema(),
            Reply(body=openai_completion("Here is the plan: decisions first...")),
            Reply(body=openai_completion(json.dumps(PLAN))),
            Reply(body=openai_completion("again prose")),
        )
        p = OpenAIProvider("local-model", api_key=None, base_url=srv.base_url, max_retries=0)
        first = p.complete(synthesis_request())
        # the answer is not JSON: the caller's repair re-ask goes out, with no response_format
        repair = dataclasses.replace(
            synthesis_request(),
            messages=synthesis_request().messages
            + (
                hf_message("assistant", first.text),
                hf_message("user", "Your answer failed validation. Return ONLY the corrected JSON object."),
            ),
        )
        second = p.complete(repair)
        p.with_model("other-local-model").complete(synthesis_request())  # same server: remembered too
        sent = [r.json for r in srv.requests]
    assert first.text.startswith("Here is the plan")
    assert hf.Synthesis.model_validate_json(second.text).actions
    assert ["response_format" in b for b in sent] == [True, False, False, False]
    assert len(sent) == 4  # the rejection was not retried on later calls


def hf_message(role, text):
    from cvagents.llm.base import Message

    return Message(role, text)
