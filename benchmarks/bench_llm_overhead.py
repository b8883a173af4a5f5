"""What cvagents adds to one LLM call beyond the bare SDK call, per provider, with 0 and 8 tools.

For each provider a loopback server (``tests/llm_servers.py``) answers at once with a canned
response. The same SDK client, the same server and the same request body are timed two ways,
call by call in alternation (so drift on a shared machine hits both alike):

- **bare SDK**: the public call with the request already built —
  ``client.chat.completions.create(**params)``, ``client.messages.create(**params)``,
  ``client.models.generate_content(**params)``;
- **cvagents**: ``Provider.complete(request)`` (mapping our request to those params, the call,
  mapping the answer back), and the same through ``build_provider``'s wrapper (budget check,
  reservation, ledger entry, bounded answer).

The overhead is the median of the call-by-call differences (wall time minus the server's own
handling time, and the calling thread's CPU time: the server shares this process, and on a busy
machine the CPU time is the steadier figure). The request is realistic: a
~6 kB system prompt and a 12-turn conversation with tool calls and results, with 0 or 8 tools.

    .venv/bin/python benchmarks/bench_llm_overhead.py [--calls 300] [--warmup 30]

Target: median overhead <= 1 ms per call, judged on the CPU time (the wall difference is printed
too; on a loaded machine it swings by a few ms either way, below zero as often as above). Exit
status 1 when one is over it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from llm_servers import (  # noqa: E402
    LLMServer,
    Reply,
    anthropic_message,
    fake_offline,
    gemini_response,
    openai_completion,
)

from cvagents.config import AgentConfig, Budgets, CallDefaults, Price  # noqa: E402
from cvagents.llm.base import LLMRequest, Message, ToolCall, ToolSpec  # noqa: E402
from cvagents.llm.cost import CostLedger  # noqa: E402
from cvagents.llm.factory import build_provider  # noqa: E402

TARGET_MS = 1.0
MODELS = {"anthropic": "claude-bench", "openai": "gpt-bench", "gemini": "gemini-bench"}
KEYS = {
    "anthropic": "bench-anthropic-key",
    "openai": "bench-openai-key",
    "gemini": "bench-gemini-key",
}  # fakes: the server ignores them


def realistic_request() -> LLMRequest:
    tools = tuple(
        ToolSpec(
            name=f"tool_{i}",
            description=f"Tool number {i}: reads or changes one part of the rollout state. " * 3,
            parameters={
                "type": "object",
                "properties": {
                    "stage": {"type": "string", "enum": ["shadow", "5_percent", "20_percent"]},
                    "reason": {"type": "string"},
                    "limit": {"type": "integer"},
                },
                "required": ["stage"],
            },
        )
        for i in range(8)
    )
    msgs: list[Message] = [Message("user", "State snapshot:\n" + ("metric=0.7412 latency_p95=41.2ms\n" * 60))]
    for i in range(5):
        call = ToolCall(f"call_{i}", f"tool_{i}", {"stage": "shadow", "reason": "check gate " * 5, "limit": i})
        msgs.append(Message("assistant", f"Step {i}: checking.", tool_calls=(call,)))
        msgs.append(
            Message("tool", json.dumps({"ok": True, "rows": list(range(40))}), tool_call_id=call.id, name=call.name)
        )
    msgs.append(Message("user", "Summarise and decide."))
    return LLMRequest(
        agent="ops_commander",
        role="V1 Executive Lead",
        purpose="action",
        system="You are the ops commander. " * 230,
        messages=tuple(msgs),
        tools=tools,
        max_tokens=1500,
    )


def canned(kind: str) -> dict:
    text = "Decision: proceed to 5_percent. " * 20
    if kind == "anthropic":
        return anthropic_message(text, model=MODELS[kind], input_tokens=4000, output_tokens=160, cache_read=2048)
    if kind == "openai":
        return openai_completion(
            text, model=MODELS[kind], prompt_tokens=4000, completion_tokens=160, cached_tokens=2048
        )
    return gemini_response(text, model=MODELS[kind], prompt_tokens=4000, candidates_tokens=160, cached_tokens=2048)


def make_provider(kind: str, base_url: str):
    if kind == "anthropic":
        from cvagents.llm.anthropic_provider import AnthropicProvider

        return AnthropicProvider(MODELS[kind], api_key=KEYS[kind], base_url=base_url, timeout_s=10, max_retries=0)
    if kind == "openai":
        from cvagents.llm.openai_provider import OpenAIProvider

        return OpenAIProvider(MODELS[kind], api_key=KEYS[kind], base_url=base_url, timeout_s=10, max_retries=0)
    from cvagents.llm.gemini_provider import GeminiProvider

    return GeminiProvider(MODELS[kind], api_key=KEYS[kind], base_url=base_url, timeout_s=10, max_retries=0)


def bare_call(kind: str, provider, req: LLMRequest):
    """The public SDK call with the request already built: what a user of the SDK alone pays."""
    params = provider.build_params(req)
    client = provider._client  # the same client (connection pool, options) as the provider's
    if kind == "anthropic":
        return lambda: client.messages.create(**params)
    if kind == "openai":
        return lambda: client.chat.completions.create(**params)
    return lambda: client.models.generate_content(**params)


def make_managed(kind: str, base_url: str):
    ledger = CostLedger(Budgets(per_meeting_usd=1e9, per_day_usd=1e9), today=lambda: "bench")
    cfg = AgentConfig(
        team="executive",
        role="bench",
        provider=kind,
        model=MODELS[kind],
        fallback_model=None,
        prompt="x.md",
        base_url=base_url,
        max_retries=0,
        timeout_s=10,
    )
    keys = {"ANTHROPIC_API_KEY": KEYS["anthropic"], "OPENAI_API_KEY": KEYS["openai"], "GOOGLE_API_KEY": KEYS["gemini"]}
    pricing = {MODELS[kind]: Price(input=3.0, output=15.0, cached_input=0.3)}
    p = build_provider(
        "ops_commander", cfg, CallDefaults(), keys=keys, ledger=ledger, pricing=pricing, offline_provider=fake_offline()
    )
    ledger.set_meeting("bench-meeting")
    return p


def measure(calls_by_name: dict, srv: LLMServer, calls: int, warmup: int) -> dict[str, tuple[list[float], list[float]]]:
    """Per variant, per call: (wall time - server handling time) and the calling thread's CPU
    time, in ms; the variants take turns call by call."""
    names = list(calls_by_name)
    for _ in range(warmup):
        for n in names:
            calls_by_name[n]()
    out: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in names}
    for _ in range(calls):
        for n in names:
            srv.clear()
            c0 = time.thread_time()
            t0 = time.perf_counter()
            calls_by_name[n]()
            wall = time.perf_counter() - t0
            cpu = time.thread_time() - c0
            server = srv.requests[0].handling_s if srv.requests else 0.0
            out[n][0].append((wall - server) * 1000.0)
            out[n][1].append(cpu * 1000.0)
    return out


def paired_median(ours: list[float], bare: list[float]) -> float:
    """Median of the call-by-call differences (each pair ran back to back): robust to the drift
    of a shared machine, which moves both calls of a pair alike."""
    return statistics.median(o - b for o, b in zip(ours, bare))


def summary(result: tuple[list[float], list[float]]) -> str:
    ms, cpu = result
    ms_sorted = sorted(ms)
    p95 = ms_sorted[int(0.95 * (len(ms_sorted) - 1))]
    return (
        f"median {statistics.median(ms):6.2f} ms  p95 {p95:6.2f} ms  mean {statistics.fmean(ms):6.2f} ms"
        f"  | client CPU median {statistics.median(cpu):5.2f} ms"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    args = ap.parse_args()

    print(
        f"cvagents overhead per LLM call = median of (cvagents call - the bare SDK call next to it), same SDK client, "
        f"server and request; {args.calls} calls each after {args.warmup} warm-up, in alternation."
    )
    worst = 0.0
    full = realistic_request()
    for n_tools in (0, 8):
        req = dataclasses.replace(full, tools=full.tools[:n_tools])
        print(f"\n[{n_tools} tools] {len(req.system)} chars system, {len(req.messages)} messages")
        for kind in ("anthropic", "openai", "gemini"):
            with LLMServer(kind, default=Reply(body=canned(kind))) as srv:
                p = make_provider(kind, srv.base_url)
                m = make_managed(kind, srv.base_url)
                got = measure(
                    {
                        "bare SDK": bare_call(kind, p, req),
                        "provider": lambda p=p, req=req: p.complete(req),
                        "+ budget/ledger": lambda m=m, req=req: m.complete(req),
                    },
                    srv,
                    args.calls,
                    args.warmup,
                )
            bare = got["bare SDK"]
            print(f"  {kind:9s} {'bare SDK':16s} {summary(bare)}")
            for name in ("provider", "+ budget/ledger"):
                wall = paired_median(got[name][0], bare[0])
                cpu = paired_median(got[name][1], bare[1])
                worst = max(worst, cpu)
                print(
                    f"  {kind:9s} {name:16s} {summary(got[name])}   overhead: wall {wall:+5.2f} ms, CPU {cpu:+5.2f} ms"
                )
    verdict = "PASS" if worst <= TARGET_MS else "OVER"
    print(f"\nworst median CPU overhead over the bare SDK call {worst:.2f} ms vs target {TARGET_MS:.1f} ms: {verdict}")
    return 0 if worst <= TARGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
