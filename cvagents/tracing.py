"""OpenTelemetry traces of a run, opt-in (the ``otel`` extra).

Off unless asked for, and then nothing of OpenTelemetry is imported: ``span`` hands back one
module-level no-op context manager, ``event`` and ``annotate`` return at once, ``traced``
calls the function it wraps. On when

- ``configure(True)`` is called (``cvagents run --trace``), or
- the standard variables ask for traces to be exported: ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set, or ``OTEL_TRACES_EXPORTER`` names an
  exporter (not ``none``) — read once, at the first span, unless ``configure`` came first;

never when ``OTEL_SDK_DISABLED=true``. On, the spans go to the tracer provider the application
already set globally, if it set one; else to ours: ``service.name`` ``cvagents`` (unless
``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` name it), exporting in batches through
the exporters ``OTEL_TRACES_EXPORTER`` names (default ``otlp``: OTLP over HTTP, or gRPC when
``OTEL_EXPORTER_OTLP_PROTOCOL=grpc``), each configured by its own ``OTEL_EXPORTER_OTLP_*``
variables. Ours is set as the global provider, so the SDKs' own instrumentation (e.g.
``opentelemetry-instrumentation-openai-v2``) exports with it and nests under our spans.

Every string attribute is redacted (``cvagents.secrets.redact``) and cut at ``MAX_TEXT``
characters: no key reaches a trace. A span's ``error.type`` attribute marks it failed.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any, ParamSpec, TypeVar

from cvagents.errors import CVAgentsError
from cvagents.secrets import redact

__all__ = [
    "SERVICE_NAME",
    "TracingUnavailable",
    "annotate",
    "carry",
    "configure",
    "enabled",
    "event",
    "reset",
    "span",
    "traced",
    "wanted",
]

log = logging.getLogger("cvagents.tracing")

SERVICE_NAME = "cvagents"
MAX_TEXT = 2000  # characters of one string attribute
EXPORTER_GROUP = "opentelemetry_traces_exporter"  # the entry points exporter packages register

P = ParamSpec("P")
R = TypeVar("R")


class TracingUnavailable(CVAgentsError):
    """Tracing was asked for, but OpenTelemetry or the exporter named is not installed."""


class _Unset:
    """Not configured yet: the first span reads the environment."""


_UNSET = _Unset()
_lock = threading.Lock()
_tracer: Any = _UNSET  # None: off; else an OpenTelemetry Tracer
_api: Any = None  # opentelemetry.trace, once on
_context: Any = None  # opentelemetry.context, once on


# ------------------------------------------------------------------ the switch


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def wanted(env: Mapping[str, str]) -> bool:
    """Whether the ``OTEL_*`` variables in ``env`` ask for traces to be exported."""
    if _true(env.get("OTEL_SDK_DISABLED")):
        return False
    exporters = (env.get("OTEL_TRACES_EXPORTER") or "").strip().lower()
    if exporters == "none":
        return False
    return bool(exporters or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure(enabled: bool | None = None, *, provider: Any = None) -> bool:
    """Turn tracing on or off; returns whether it is on.

    ``enabled``: True turns it on (a ``TracingUnavailable`` if OpenTelemetry is not installed),
    False off, None as the ``OTEL_*`` variables say. ``provider``: the ``TracerProvider`` to use
    instead of the global one (tests: an SDK provider with an in-memory exporter); it turns
    tracing on unless ``enabled`` is False. ``OTEL_SDK_DISABLED=true`` keeps it off whatever is
    asked, unless a provider is given.
    """
    global _tracer
    with _lock:
        _tracer = _tracer_for(enabled, provider)
        return _tracer is not None


def reset() -> None:
    """Forget the configuration: the next span reads the environment again (tests)."""
    global _tracer
    with _lock:
        _tracer = _UNSET


def enabled() -> bool:
    return _on() is not None


def _on() -> Any:
    """The tracer, or None when off; the first call without ``configure`` reads the environment."""
    global _tracer
    t = _tracer
    if t is _UNSET:
        with _lock:
            if _tracer is _UNSET:
                try:
                    _tracer = _tracer_for(None, None)
                except CVAgentsError as e:  # asked for by the environment only: never fatal to a run
                    log.warning("tracing is off: %s", e)
                    _tracer = None
            t = _tracer
    return t


def _tracer_for(enabled: bool | None, provider: Any) -> Any:
    global _api, _context
    if enabled is False:
        return None
    if provider is None:
        if _true(os.environ.get("OTEL_SDK_DISABLED")):
            if enabled:
                log.warning("tracing is off: OTEL_SDK_DISABLED=true")
            return None
        if enabled is None and not wanted(os.environ):
            return None
    try:
        from opentelemetry import context, trace
    except ImportError:
        if enabled is None and provider is None:
            log.warning("tracing is off: the OTEL_* variables ask for traces, but OpenTelemetry is not installed")
            return None
        raise TracingUnavailable(
            "opentelemetry: not installed; tracing needs the otel extra (pip install 'cvagents[otel]')"
        ) from None
    if provider is None:
        provider = _global_provider(trace)
    _api, _context = trace, context
    log.info("tracing on: spans go to %s", type(provider).__name__)
    return provider.get_tracer("cvagents")


def _global_provider(trace: Any) -> Any:
    """The application's provider if it set one; else ours, set as the global one."""
    current = trace.get_tracer_provider()
    if not isinstance(current, trace.ProxyTracerProvider):
        return current
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    own = TracerProvider(resource=Resource.create({} if named else {"service.name": SERVICE_NAME}))
    for exporter in _exporters():
        own.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(own)
    return own


def _exporters() -> list[Any]:
    """The span exporters ``OTEL_TRACES_EXPORTER`` names, found by their entry points."""
    out = []
    for name in (os.environ.get("OTEL_TRACES_EXPORTER") or "otlp").split(","):
        name = name.strip().lower()
        if name in ("", "none"):
            continue
        if name == "otlp":
            protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
                "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
            )
            name = "otlp_proto_grpc" if protocol.strip() == "grpc" else "otlp_proto_http"
        found = list(entry_points(group=EXPORTER_GROUP, name=name))
        if not found:
            raise TracingUnavailable(
                f"OTEL_TRACES_EXPORTER: no span exporter {name!r} is installed "
                f"(pip install 'cvagents[otel]' for OTLP over HTTP; opentelemetry-exporter-otlp-proto-grpc for gRPC)"
            )
        out.append(found[0].load()())
    return out


# ------------------------------------------------------------------ attributes


def _text(value: str) -> str:
    s = redact(value)
    return s if len(s) <= MAX_TEXT else s[:MAX_TEXT] + "…"


def _value(v: Any) -> Any:
    if isinstance(v, bool | int | float):
        return v
    if isinstance(v, str):
        return _text(str(v))  # str(): a StrEnum's value, as a plain str
    if isinstance(v, list | tuple | set | frozenset):
        return [_text(x if isinstance(x, str) else json.dumps(x, default=str)) for x in v if x is not None]
    return _text(json.dumps(v, default=str, sort_keys=True))


def clean(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """Attributes as OpenTelemetry takes them: None dropped, text redacted and cut, anything
    else but numbers and booleans as JSON text."""
    return {k: _value(v) for k, v in (attributes or {}).items() if v is not None}


# ------------------------------------------------------------------ spans and events


class _Noop:
    """The span when tracing is off: one instance, doing nothing."""

    __slots__ = ()

    def __enter__(self) -> _Noop:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def set(self, attributes: Mapping[str, Any] | None) -> None:
        return None


NOOP = _Noop()


class _Live:
    """A recording span, current while its ``with`` block runs."""

    __slots__ = ("_cm", "_span")

    def __init__(self, tracer: Any, name: str, attributes: Mapping[str, Any] | None, kind: str):
        self._cm = tracer.start_as_current_span(name, kind=_api.SpanKind[kind.upper()], attributes=clean(attributes))
        self._span: Any = None

    def __enter__(self) -> _Live:
        self._span = self._cm.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._cm.__exit__(*exc)

    def set(self, attributes: Mapping[str, Any] | None) -> None:
        _set(self._span, attributes)


def _set(s: Any, attributes: Mapping[str, Any] | None) -> None:
    attrs = clean(attributes)
    s.set_attributes(attrs)
    if "error.type" in attrs:
        s.set_status(_api.Status(_api.StatusCode.ERROR, str(attrs.get("cvagents.error") or attrs["error.type"])))


def span(name: str, attributes: Mapping[str, Any] | None = None, *, kind: str = "internal") -> _Noop | _Live:
    """A span around a ``with`` block, the current one inside it; ``.set(attributes)`` adds
    attributes (what is known at the end). ``kind``: internal, client, ..."""
    t = _tracer
    if t is None:
        return NOOP
    if t is _UNSET:
        t = _on()
        if t is None:
            return NOOP
    return _Live(t, name, attributes, kind)


def event(name: str, attributes: Mapping[str, Any] | None = None) -> None:
    """An event on the current span (a rollout decision, a gate verdict)."""
    if _tracer is None or _on() is None:
        return
    _api.get_current_span().add_event(name, clean(attributes))


def annotate(attributes: Mapping[str, Any] | None) -> None:
    """More attributes on the current span."""
    if _tracer is None or _on() is None:
        return
    _set(_api.get_current_span(), attributes)


def carry(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` run in the trace context of the caller, from whatever thread runs it (a thread
    pool does not carry it): the agents of a meeting round answer under the meeting's span."""
    if _tracer is None or _on() is None:
        return fn
    parent = _context.get_current()

    @functools.wraps(fn)
    def inside(*args: P.args, **kwargs: P.kwargs) -> R:
        token = _context.attach(parent)
        try:
            return fn(*args, **kwargs)
        finally:
            _context.detach(token)

    return inside


def _attributes(of: Callable[..., Mapping[str, Any]], *args: Any, **kwargs: Any) -> Mapping[str, Any]:
    try:
        return of(*args, **kwargs)
    except Exception:  # noqa: BLE001 - a trace is never worth a failed run
        log.warning("tracing: %s failed; the span goes without its attributes", of.__name__, exc_info=True)
        return {}


def traced(
    name: str | Callable[..., str],
    start: Callable[..., Mapping[str, Any]] | None = None,
    end: Callable[[Any], Mapping[str, Any]] | None = None,
    *,
    kind: str = "internal",
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A decorator: each call of the function in a span. ``name``: the span's name, or a
    function of the call's arguments giving it; ``start``: the attributes from the call's
    arguments; ``end``: from its result. Off, the function is called as it is."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            if _tracer is None or _on() is None:
                return fn(*args, **kwargs)
            title = name if isinstance(name, str) else _title(name, *args, **kwargs)
            with span(title, _attributes(start, *args, **kwargs) if start else None, kind=kind) as s:
                result = fn(*args, **kwargs)
                if end is not None:
                    s.set(_attributes(end, result))
                return result

        return inner

    return wrap


def _title(name: Callable[..., str], *args: Any, **kwargs: Any) -> str:
    try:
        return name(*args, **kwargs)
    except Exception:  # noqa: BLE001
        log.warning("tracing: %s failed", name.__name__, exc_info=True)
        return getattr(name, "__name__", "span")
