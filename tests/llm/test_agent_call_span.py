"""The OpenAI SDK's own OpenTelemetry instrumentation (opentelemetry-instrumentation-openai-v2)
nests its span under our agent call's: ``ManagedProvider.complete`` holds the agent-call span
current while the SDK call runs, so whatever the SDK records is a child of it, in the same trace.

The real ``OpenAIProvider`` makes the call as the SDK intends (``chat.completions.create``, the
call that instrumentation wraps) against a loopback server speaking the OpenAI wire format."""

from __future__ import annotations

import sys

import httpx2
import pytest
from llm_servers import LLMServer, fake_offline, make_request, openai_completion

from cvagents import tracing
from cvagents.llm.cost import CostLedger
from cvagents.llm.factory import ManagedProvider
from cvagents.llm.openai_provider import OpenAIProvider

# The instrumentation imports ``httpx`` for its URL type alone; the SDKs now use httpx2, its
# drop-in fork, and httpx is not installed: httpx2 stands in for it while the module loads.
_had_httpx = "httpx" in sys.modules
sys.modules.setdefault("httpx", httpx2)
try:
    instrumentation = pytest.importorskip("opentelemetry.instrumentation.openai_v2")
finally:
    if not _had_httpx and sys.modules.get("httpx") is httpx2:
        del sys.modules["httpx"]


@pytest.fixture
def traced_sdk():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.configure(provider=provider)
    instrumentor = instrumentation.OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    yield exporter
    instrumentor.uninstrument()
    tracing.reset()
    provider.shutdown()


def test_the_openai_sdk_span_is_a_child_of_the_agent_call_span(traced_sdk):
    pricing = {"gpt-test": {"input": 1.0, "output": 2.0}}  # US dollars per million tokens
    with LLMServer("openai") as srv:
        srv.reply(openai_completion("the plan holds", prompt_tokens=1000, completion_tokens=500))
        sdk = OpenAIProvider("gpt-test", api_key="sk-test-not-a-real-key-0000", base_url=srv.base_url, max_retries=0)
        managed = ManagedProvider(
            "critic", [sdk, fake_offline()], ledger=CostLedger(), pricing=pricing, budgets=None, warnings=[]
        )
        try:
            result = managed.complete(make_request())
        finally:
            sdk.close()
    assert result.text == "the plan holds"

    spans = traced_sdk.get_finished_spans()
    (ours,) = [s for s in spans if s.attributes.get("cvagents.agent") == "critic"]
    theirs = [s for s in spans if s is not ours]
    assert theirs, "the OpenAI instrumentation recorded no span for chat.completions.create"
    for s in theirs:
        assert s.parent is not None and s.parent.span_id == ours.context.span_id
        assert s.context.trace_id == ours.context.trace_id
    (chat,) = theirs
    assert chat.attributes["gen_ai.request.model"] == "gpt-test"
    assert ours.name == "chat gpt-test"
    assert ours.attributes["gen_ai.usage.input_tokens"] == 1000
    assert ours.attributes["gen_ai.usage.output_tokens"] == 500
    assert ours.attributes["cvagents.cost_usd"] == pytest.approx(0.002)
