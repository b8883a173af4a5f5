"""Anthropic prompt caching on the wire: breakpoints on the tools and the system prompt, and the
cache writes and reads the API reports, priced as Anthropic prices them."""

from llm_servers import LLMServer, Reply, anthropic_message, make_request, metrics_tool

from cvagents.llm.anthropic_provider import AnthropicProvider
from cvagents.llm.cost import CostLedger

KEY = "sk-ant-test-0123456789abcdef"


def test_the_request_marks_cache_breakpoints_and_writes_are_counted():
    with LLMServer("anthropic") as srv:
        srv.push(Reply(body=anthropic_message("ok", input_tokens=20, cache_read=1500, cache_creation=300)))
        p = AnthropicProvider("claude-sonnet-4-20250514", api_key=KEY, base_url=srv.base_url, timeout_s=5.0)
        try:
            res = p.complete(make_request(tools=[metrics_tool()]))
        finally:
            p.close()
        body = srv.requests[0].json
    assert body["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert (res.usage.input_tokens, res.usage.cached_tokens, res.usage.cache_write_tokens) == (1820, 1500, 300)
    ledger = CostLedger()
    rec = ledger.record_call(agent="critic", provider="anthropic", model=p.model, usage=res.usage)
    # 20 * 3 + 300 * 3.75 + 1500 * 0.3 + 5 * 15, per million
    assert rec.cost_usd == round((20 * 3 + 300 * 3.75 + 1500 * 0.3 + 5 * 15) / 1e6, 6)
    assert ledger.saved() == round((1500 * 2.7 - 300 * 0.75) / 1e6, 6)
    assert ledger.cached_tokens() == 1500
