"""OpenTelemetry tracing (the ``otel`` extra): off by default and then not even imported; on,
a run's trace is run ⊃ meeting ⊃ agent calls and run ⊃ heartbeat ⊃ action ⊃ tool calls, with
the rollout's decisions and gate verdicts as events, and no key in any attribute.

In-process tests give ``tracing.configure`` their own SDK provider with an in-memory exporter;
what touches the global provider (set once per process) runs in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.trace import StatusCode

from cvagents import tracing
from cvagents.secrets import forget_secrets, register_secret

ROOT = Path(__file__).resolve().parents[1]
FAKE_KEY = "sk-ant-tracing-FAKE-0123456789abcdef"
UNSHAPED_SECRET = "hunter2-correct-horse-battery"  # not shaped like a key: only its registration redacts it


def _clean_env(**more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(more)
    return env


def _run_py(code: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


# ------------------------------------------------------------------ the switch


@pytest.mark.parametrize(
    "env, on",
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, False),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_SERVICE_NAME": "mine"}, False),  # naming the service asks for no export
    ],
)
def test_the_otel_variables_that_ask_for_traces(env, on):
    assert tracing.wanted(env) is on


def test_off_a_run_imports_nothing_of_opentelemetry(seeded_workspace):
    """With no OTEL_* variable, a meeting and a heartbeat (agent calls, actions, tool calls,
    the controller's review) run through the no-op spans: OpenTelemetry never enters the process."""
    code = f"""
import json, sys
sys.path.insert(0, "tests")
from short_run import short_run
from cvagents import tracing
result = short_run(__import__("pathlib").Path({str(seeded_workspace)!r}))
assert (result["meetings"], result["heartbeats"]) == (1, 1), result
assert not tracing.enabled() and tracing.span("y") is tracing.NOOP
print(json.dumps(sorted(m for m in sys.modules if m.startswith("opentelemetry"))))
"""
    r = _run_py(code, _clean_env())
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == []


def test_sdk_disabled_wins_over_an_explicit_switch(monkeypatch):
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    try:
        assert tracing.configure(True) is False
        assert tracing.span("x") is tracing.NOOP
    finally:
        tracing.reset()


def test_trace_without_the_extra_is_one_line_and_creates_nothing(tmp_path):
    """``cvagents run --trace`` where OpenTelemetry cannot be imported: exit 2, one line
    naming the extra, no workspace made."""
    ws = tmp_path / "ws"
    code = f"""
import sys
sys.modules["opentelemetry"] = None  # as if the otel extra were not installed
from cvagents.cli import main
sys.exit(main(["run", "--trace", "--provider", "offline", "--meetings", "1", "--workspace", {str(ws)!r}]))
"""
    r = _run_py(code, _clean_env())
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines == ["error: opentelemetry: not installed; tracing needs the otel extra (pip install 'cvagents[otel]')"]
    assert not ws.exists()


# ------------------------------------------------------------------ export through the OTEL_* variables


class _Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP collector on loopback: keeps each export request's body."""

    bodies: list[tuple[str, bytes]] = []

    def do_POST(self):  # noqa: N802
        n = int(self.headers.get("content-length") or 0)
        type(self).bodies.append((self.path, self.rfile.read(n)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def collector():
    _Collector.bodies = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv, _Collector.bodies
    srv.shutdown()
    srv.server_close()


def _exported(bodies: list[tuple[str, bytes]]) -> list[tuple[dict, str, dict]]:
    """(resource attributes, span name, span attributes) of every span the collector received."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    out = []
    for path, body in bodies:
        assert path == "/v1/traces"
        req = ExportTraceServiceRequest.FromString(body)
        for rs in req.resource_spans:
            res = {a.key: a.value.string_value for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    out.append((res, s.name, {a.key: a.value for a in s.attributes}))
    return out


SPAN_AND_EXIT = """
import sys
from cvagents import tracing
with tracing.span("cvagents.run", {"cvagents.session_id": "s1", "note": sys.argv[1]}):
    tracing.event("cvagents.rollout_decision", {"cvagents.kind": "deployed"})
print(tracing.enabled(), any(m.startswith("opentelemetry") for m in sys.modules))
"""


def test_the_otlp_endpoint_variable_alone_exports_the_spans_as_cvagents(collector):
    srv, bodies = collector
    endpoint = f"http://127.0.0.1:{srv.server_address[1]}"
    env = _clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_BSP_SCHEDULE_DELAY="60000")
    r = subprocess.run(
        [sys.executable, "-c", SPAN_AND_EXIT, f"key {FAKE_KEY}"], env=env, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "True"]
    spans = _exported(bodies)  # flushed at exit: the provider shuts down with the process
    assert [(res.get("service.name"), name) for res, name, _ in spans] == [("cvagents", "cvagents.run")]
    attrs = spans[0][2]
    assert attrs["cvagents.session_id"].string_value == "s1"
    assert attrs["note"].string_value == "key [REDACTED]"


def test_the_users_service_name_and_disabled_sdk_are_respected(collector):
    srv, bodies = collector
    endpoint = f"http://127.0.0.1:{srv.server_address[1]}"
    named = _clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_SERVICE_NAME="rollout-bot")
    r = subprocess.run(
        [sys.executable, "-c", SPAN_AND_EXIT, "x"], env=named, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert {res.get("service.name") for res, _, _ in _exported(bodies)} == {"rollout-bot"}

    bodies.clear()
    off = _clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_SDK_DISABLED="true")
    r = subprocess.run([sys.executable, "-c", SPAN_AND_EXIT, "x"], env=off, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False"]  # off, and OpenTelemetry never imported
    assert bodies == []


def test_an_application_provider_already_set_is_used_not_replaced():
    code = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from cvagents import tracing

exp = InMemorySpanExporter()
mine = TracerProvider()
mine.add_span_processor(SimpleSpanProcessor(exp))
trace.set_tracer_provider(mine)
assert tracing.configure(True)
with tracing.span("cvagents.run"):
    pass
assert trace.get_tracer_provider() is mine
print([s.name for s in exp.get_finished_spans()])
"""
    r = _run_py(code, _clean_env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['cvagents.run']"


# ------------------------------------------------------------------ attributes


def test_text_attributes_are_redacted_and_failures_marked(span_exporter):
    register_secret(UNSHAPED_SECRET)
    try:
        with tracing.span("t", {"a": f"Bearer {UNSHAPED_SECRET}", "b": [FAKE_KEY, 3], "c": {"k": FAKE_KEY}}) as s:
            s.set({"error.type": "failed", "cvagents.error": f"the tool said {UNSHAPED_SECRET}", "none": None})
    finally:
        forget_secrets()
    (span,) = span_exporter.get_finished_spans()
    attrs = dict(span.attributes)
    assert attrs["a"] == "Bearer [REDACTED]"
    assert attrs["b"] == ("[REDACTED]", "3")
    assert json.loads(attrs["c"]) == {"k": "[REDACTED]"}
    assert "none" not in attrs
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description == "the tool said [REDACTED]"


def test_an_unknown_tool_is_a_failed_execute_tool_span(span_exporter, tmp_path):
    from cvagents.config import Settings
    from cvagents.execution.tools import ToolContext, default_registry
    from cvagents.workspace import Workspace

    settings = Settings(ROOT)
    ws = Workspace.from_config(tmp_path / "ws", settings.coordination)
    ctx = ToolContext(ws, settings.coordination, action_key="m#1", agent="infra_guardian")
    out = default_registry().call(ctx, "format_disk", {"device": FAKE_KEY})
    assert out.status == "failed"  # sent back to the agent to fix, not a refusal
    (span,) = span_exporter.get_finished_spans()
    assert span.name == "execute_tool format_disk"
    a = dict(span.attributes)
    assert a["gen_ai.operation.name"] == "execute_tool"
    assert a["gen_ai.tool.name"] == "format_disk"
    assert a["cvagents.action_id"] == "m#1" and a["cvagents.agent"] == "infra_guardian"
    assert a["cvagents.tool.status"] == "failed" and a["error.type"] == "failed"
    assert "unknown tool" in a["cvagents.error"]
    assert FAKE_KEY not in a["cvagents.tool.arguments"]
    assert span.status.status_code == StatusCode.ERROR
