"""A loopback stand-in for three model vendors that answers like agents would (a helper, not a
test module): contributions in prose, the moderator's synthesis as JSON (malformed once, to be
repaired), and for executives a native tool call chosen from the action's words, then a RESULT
line. It reads each API's own wire format, so the official SDKs are exercised for real.
"""

from __future__ import annotations

import json
import re
import threading

from llm_servers import LLMServer, Received, Reply, anthropic_message, gemini_response, openai_completion

from cvagents.offline.planning import plan
from cvagents.offline.provider import choose_tool

# A fresh rollout, as the state snapshot gives it to a first meeting: model built, nothing deployed.
FRESH_STATE = {
    "meeting_number": 1,
    "stages_order": ["shadow", "5_percent", "20_percent", "50_percent", "production"],
    "thresholds": {
        "ndcg_at_10_min": 0.72,
        "latency_p95_ms_max": 50.0,
        "slo_compliance_min": 0.99,
        "p0_incidents_max": 0,
        "rollback_test_required": True,
    },
    "artifacts": {
        "model": "research/v1_production.pth",
        "model_sha256": "ab" * 32,
        "model_rejected": False,
        "validation_set": True,
    },
    "stages": {},
    "current": None,
    "next_stage": "shadow",
    "evaluations_recorded": 0,
    "last_execution": {"succeeded": [], "failed": [], "refused": []},
    "open_actions": [],
    "failed_actions": [],
}


def _texts(kind: str, body: dict) -> tuple[str, int, bool]:
    """(all user text, number of tool results, tools offered) from one request body."""
    texts: list[str] = []
    results = 0
    if kind == "anthropic":
        for m in body.get("messages", []):
            content = m["content"]
            if isinstance(content, str):
                texts.append(content) if m["role"] == "user" else None
                continue
            for block in content:
                if block.get("type") == "tool_result":
                    results += 1
                elif block.get("type") == "text" and m["role"] == "user":
                    texts.append(block["text"])
        return "\n".join(texts), results, bool(body.get("tools"))
    if kind == "openai":
        for m in body.get("messages", []):
            if m["role"] == "tool":
                results += 1
            elif m["role"] == "user":
                texts.append(m["content"] if isinstance(m["content"], str) else json.dumps(m["content"]))
        return "\n".join(texts), results, bool(body.get("tools"))
    for c in body.get("contents", []):
        for part in c.get("parts", []):
            if "functionResponse" in part:
                results += 1
            elif "text" in part and c.get("role") == "user":
                texts.append(part["text"])
    return "\n".join(texts), results, bool(body.get("tools"))


class AgentBackend:
    """One responder for all three servers. Counts what it was asked, per kind."""

    def __init__(self, malformed_first_synthesis: bool = True, delay_s: float = 0.0):
        self.malformed_first = malformed_first_synthesis
        self.delay_s = delay_s
        self.lock = threading.Lock()
        self.synthesis_requests = 0
        self.repairs_seen = 0
        self.tool_calls_sent = 0
        self.calls: dict[str, int] = {"anthropic": 0, "openai": 0, "gemini": 0}

    def __call__(self, kind: str, rec: Received) -> Reply:
        body = rec.json or {}
        text, results, tools = _texts(kind, body)
        with self.lock:
            self.calls[kind] += 1
        tool: tuple[str, dict] | None = None
        if tools and results == 0:
            m = re.search(r"# Action \d+ .*?\n(.*?)\n\nSuccess criteria", text, re.S)
            tool = choose_tool(m.group(1)) if m else None
            answer = None if tool else "RESULT: failed — no tool fits."
        elif tools:
            answer = "RESULT: succeeded — the tool did what the action asked."
        elif "Return ONLY a JSON object" in text or "Return ONLY the corrected JSON object" in text:
            with self.lock:
                self.synthesis_requests += 1
                first = self.synthesis_requests == 1
                if "failed validation" in text:
                    self.repairs_seen += 1
            if first and self.malformed_first:
                answer = 'Sure, here is the plan: {"decisions": [], "actions": [{"action": "Deploy", "owner": "nobody"'
            else:
                state = json.loads(re.search(r"## State snapshot\n```json\n(.*?)\n```", text, re.S).group(1))
                answer = "Here is the synthesis.\n```json\n" + json.dumps(plan(state)) + "\n```"
        else:
            answer = "From my side the state looks consistent.\n\nRecommended actions:\n- Evaluate the version live in shadow on data/validation_set."
        usage_in = max(1, len(rec.body) // 4)
        usage_out = max(1, len(answer or "") // 4)
        if tool:
            with self.lock:
                self.tool_calls_sent += 1
        calls = [("call_1", tool[0], tool[1])] if tool else []
        if kind == "anthropic":
            body_out = anthropic_message(
                answer,
                tool_calls=calls,
                model=body.get("model", "claude"),
                input_tokens=usage_in,
                output_tokens=usage_out,
            )
        elif kind == "openai":
            body_out = openai_completion(
                answer,
                tool_calls=calls,
                model=body.get("model", "gpt"),
                prompt_tokens=usage_in,
                completion_tokens=usage_out,
            )
        else:
            model = re.search(r"/models/([^/:]+):", rec.path).group(1)
            body_out = gemini_response(
                answer, function_calls=calls, model=model, prompt_tokens=usage_in, candidates_tokens=usage_out
            )
        return Reply(body=body_out, delay_s=self.delay_s)


def start_servers(backend: AgentBackend) -> dict[str, LLMServer]:
    return {k: LLMServer(k, responder=backend).start() for k in ("anthropic", "openai", "gemini")}


def env_for(servers: dict[str, LLMServer], keys: dict[str, str]) -> dict[str, str]:
    """Environment that points each SDK at its loopback server (the SDKs' own variables)."""
    return {
        "ANTHROPIC_BASE_URL": servers["anthropic"].origin,
        "OPENAI_BASE_URL": servers["openai"].base_url,
        "GOOGLE_GEMINI_BASE_URL": servers["gemini"].origin,
        **keys,
    }
