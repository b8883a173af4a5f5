"""Tool calls written as text, in the shapes local servers' own parsers accept."""

from __future__ import annotations

import pytest

from cvagents.llm.text_tool_calls import TextToolCall, find_text_tool_calls

CALL = TextToolCall("deploy_model", {"model_path": "research/v1_production.pth", "stage": "shadow"})
ARGS = '{"model_path": "research/v1_production.pth", "stage": "shadow"}'


@pytest.mark.parametrize(
    "text",
    [
        f'```json\n{{"name": "deploy_model", "arguments": {ARGS}}}\n```',
        f'I will deploy now.\n```\n{{"name": "deploy_model", "parameters": {ARGS}}}\n```\nThen report.',
        f'{{"name": "deploy_model", "arguments": {ARGS}}}',
        f'Calling: {{"tool": "deploy_model", "parameters": {ARGS}}}',
        f'{{"type": "function", "function": {{"name": "deploy_model", "arguments": {ARGS}}}}}',
        f'<tool_call>\n{{"name": "deploy_model", "arguments": {ARGS}}}\n</tool_call>',
        f'{{"tool_calls": [{{"function": {{"name": "deploy_model", "arguments": {ARGS}}}}}]}}',
    ],
)
def test_each_shape_is_found(text):
    assert find_text_tool_calls(text) == [CALL]


def test_arguments_given_as_a_json_string_are_parsed():
    text = '{"function": {"name": "deploy_model", "arguments": "{\\"model_path\\": \\"research/v1_production.pth\\", \\"stage\\": \\"shadow\\"}"}}'
    assert find_text_tool_calls(text) == [CALL]


def test_several_calls_in_order_and_none_without_arguments_key():
    text = '[{"name": "check_files", "arguments": {}}, {"name": "collect_metrics"}]'
    assert find_text_tool_calls(text) == [TextToolCall("check_files", {}), TextToolCall("collect_metrics", {})]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "RESULT: succeeded — deployed to shadow",
        "RESULT: succeeded — NDCG@10 0.741 [0.728, 0.75]; {not json}",
        '```json\n{"decisions": [], "actions": []}\n```',
        '{"name": "Ops", "role": "lead", "team": "executive"}',  # has a name, but is no call
        '{"name": "deploy_model", "arguments": "not json"}',
    ],
)
def test_text_without_a_tool_call_finds_none(text):
    assert find_text_tool_calls(text) == []
