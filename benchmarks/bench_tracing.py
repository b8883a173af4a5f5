"""What tracing costs when it is off: the added time per span, and that OpenTelemetry stays out.

With no ``OTEL_*`` variable and no ``--trace``, ``tracing.span`` hands back one module-level
no-op and ``tracing.traced`` calls the function it wraps. Measured, per call, in the
calling thread's CPU time (``time.thread_time``: what the others on a shared machine take is
not counted), the best of ``--repeats`` runs of ``--calls`` calls each, the loop's own cost
subtracted:

- a method decorated with ``tracing.traced`` (as every hook in the package is:
  ``Coordinator.run`` / ``heartbeat``, ``Meeting.hold``, ``ManagedProvider.complete``,
  ``Executive.carry_out``, ``ToolRegistry.call``) against the same method undecorated;
- ``with tracing.span(name): ...``, the form for a block;
- ``tracing.event`` (a decision or gate verdict).

Also shown, for scale: a bare Python function call on this machine now, and a span when
tracing is on (SDK provider, no exporter): what ``--trace`` adds per span.

    .venv/bin/python benchmarks/bench_tracing.py [--calls 200000] [--repeats 7]

Target: < 1 µs per span when off. Exit status 1 when a figure is over it, or when the off
measurements imported anything of OpenTelemetry.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

for name in [k for k in os.environ if k.startswith("OTEL_")]:
    del os.environ[name]

from cvagents import tracing  # noqa: E402

TARGET_US = 1.0


class Plain:
    def call(self, x: int) -> int:
        return x


class Traced:
    @tracing.traced("bench", lambda self, x: {"x": x}, lambda r: {"r": r})
    def call(self, x: int) -> int:
        return x


def per_call_us(body, calls: int, repeats: int) -> float:
    """Best µs per call of ``body(calls)`` minus an empty loop's."""

    def empty(n: int) -> None:
        for _ in range(n):
            pass

    out = []
    for _ in range(repeats):
        t0 = time.thread_time()
        empty(calls)
        base = time.thread_time() - t0
        t0 = time.thread_time()
        body(calls)
        out.append((time.thread_time() - t0 - base) / calls * 1e6)
    return min(out)


def bare(n: int) -> None:
    f = Plain().call
    for i in range(n):
        f(i)


def spans(n: int) -> None:
    for _ in range(n):
        with tracing.span("cvagents.action"):
            pass


def events(n: int) -> None:
    for i in range(n):
        tracing.event("cvagents.gate_verdict", {"cvagents.stage": "shadow", "i": i})


def methods(obj) -> object:
    def run(n: int) -> None:
        call = obj.call
        for i in range(n):
            call(i)

    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args()
    n, r = a.calls, a.repeats

    off = {
        "traced method, added": per_call_us(methods(Traced()), n, r) - per_call_us(methods(Plain()), n, r),
        "with span": per_call_us(spans, n, r),
        "event": per_call_us(events, n, r),
    }
    leaked = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
    print(f"tracing off ({n} calls, best of {r}, loop subtracted):")
    for what, us in off.items():
        print(f"  {what:32s} {us:7.3f} µs   {'ok' if us < TARGET_US else 'OVER'} (target < {TARGET_US} µs)")
    print(f"  opentelemetry modules imported: {len(leaked)}")
    print(f"  for scale, a bare method call: {per_call_us(bare, n, r):.3f} µs")

    from opentelemetry.sdk.trace import TracerProvider

    tracing.configure(provider=TracerProvider())
    on = per_call_us(spans, max(1, n // 20), r)
    tracing.reset()
    print(f"tracing on, for scale (SDK provider, no exporter): span {on:.2f} µs")
    return 0 if all(us < TARGET_US for us in off.values()) and not leaked else 1


if __name__ == "__main__":
    sys.exit(main())
