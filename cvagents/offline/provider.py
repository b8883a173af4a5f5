"""The built-in offline provider: deterministic rules instead of an LLM, no key, no network.

It answers the same requests as the real providers, through the same seam: planning
contributions and the moderator's JSON synthesis from ``request.context['state']``, and for an
executive action a native tool call chosen from the action's words, then a ``RESULT:`` line
from the tool results it gets back.
"""

from __future__ import annotations

import json
import re
from typing import Any

from cvagents.clock import stopwatch
from cvagents.llm.base import LLMRequest, LLMResult, Provider, ToolCall, Usage
from cvagents.offline import voices
from cvagents.offline.planning import plan

MODEL = "offline-rules-v1"

_STAGE_PATTERNS = [
    ("production", r"\bproduction\b"),
    ("50_percent", r"\b50(?:_percent|\s?%|\s?percent)"),
    ("20_percent", r"\b20(?:_percent|\s?%|\s?percent)"),
    ("5_percent", r"\b5(?:_percent|\s?%|\s?percent)"),
    ("shadow", r"\bshadow\b"),
]


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def stages_in(text: str) -> list[str]:
    """Stages named in ``text``, in order of appearance."""
    found = []
    for stage, pat in _STAGE_PATTERNS:
        for m in re.finditer(pat, text, re.I):
            found.append((m.start(), stage))
    return [s for _, s in sorted(found)]


# a model artifact (any file under research/ but a script) or a stage's folder
_ARTIFACT = re.compile(r"\b(research/[\w./-]*\w|deployment/[\w./-]*\w)")


def artifact_in(text: str) -> str | None:
    """The first model artifact an action names: a file under research/ that is not a script
    (``research/v1_production.pth``, ``research/candidates/bm25.json``) or ``deployment/<stage>``."""
    return next((p for p in _ARTIFACT.findall(text) if not p.endswith(".py")), None)


# a script under research/ and its options; a value ends before the punctuation that ends a
# sentence or a clause ("... --validation-set data/validation_set."), not at a dot inside it (1.5, x.pth)
_VALUE = r"[^\s-][^\s,;]*?(?=[.,;:]?(?:\s|$))"
_SCRIPT = re.compile(rf"(research/[\w./-]+\.py)((?:\s+--?[\w-]+(?:\s+{_VALUE})?)*)")


def target_stage(text: str) -> str:
    """The stage a deployment goes to: the one named after "to (the)", else the last named."""
    after_to = [st for m in re.findall(r"\bto\s+(?:the\s+)?(\S+)", text, re.I) for st in stages_in(m)]
    stages = after_to or stages_in(text)
    return stages[-1] if stages else "shadow"


def choose_tool(action: str) -> tuple[str, dict] | None:
    """The tool call an action's words ask for, or None when no tool fits.

    The leading verb decides ("Check that ... metrics.json exists" is a file check); failing
    that, the first rule whose words appear anywhere in the action.
    """
    text = action.lower()
    stages = stages_in(action)
    model_path = artifact_in(action)
    script = _SCRIPT.search(action)

    def drill():
        return "run_rollback_drill", {"stage": stages[0] if stages else "shadow"}

    def rollback():
        return "rollback_model", {"stage": stages[0] if stages else "shadow"}

    def create():
        return "create_v1_artifacts", {}

    script_path, script_args = (script.group(1), script.group(2).split()) if script else ("", [])

    def run_script():
        return "run_python_script", {"path": script_path, "args": script_args}

    def deploy():
        stage = target_stage(action)
        source = next((f"deployment/{s}" for s in stages if s != stage), None)  # "promote 50% to production"
        return "deploy_model", {"model_path": model_path or source or "research/v1_production.pth", "stage": stage}

    def evaluate():
        model = model_path or (f"deployment/{stages[0]}" if stages else "research/v1_production.pth")
        return "run_evaluation", {"model_path": model, "validation_set": "data/validation_set"}

    def collect():
        return "collect_metrics", {}

    def replay():
        minutes = re.search(r"(\d+(?:\.\d+)?)\s*(?:simulated\s+)?min(?:ute)?s?\b", text)
        args: dict[str, Any] = {"stage": stages[0] if stages else "shadow"}
        if minutes:
            args["minutes"] = float(minutes.group(1))
        return "replay_traffic", args

    def status():
        return "rollout_status", {}

    def check():
        named = re.findall(r"\b((?:research|runs|data|deployment|reports)/[\w./-]*\w)", action)
        return "check_files", {"paths": named} if named else {}

    rules = [
        (r"\bdrill", drill),
        (r"\breplay|\b(?:live|shadow|mirrored)\s+traffic\b", replay),
        (r"\bapprov|\brollout status\b", status),
        (r"\broll(?:ing)?[ -]?back\b", rollback),
        (r"\bcreate\b.*\b(?:artifacts?|model)\b", create),
        (r"\.py\b", run_script if script else None),
        (r"\b(?:deploy|promote)\b", deploy),
        (r"\b(?:evaluate|evaluation|measure)\b", evaluate),
        (r"\b(?:collect|metrics)\b", collect),
        (r"\b(?:check|verify|files?)\b", check),
    ]
    first = text.split(maxsplit=1)[0] if text.split() else ""
    leading = {
        "create": create,
        "deploy": deploy,
        "promote": deploy,
        "evaluate": evaluate,
        "measure": evaluate,
        "collect": collect,
        "check": check,
        "verify": check,
        "replay": replay,
    }
    if first in leading and not re.search(r"\bdrill", text):
        return leading[first]()
    for pattern, fn in rules:
        if fn and re.search(pattern, text):
            return fn()
    return None


class OfflineProvider(Provider):
    name = "offline"

    def __init__(self, model: str = MODEL):
        self.model = model

    def complete(self, request: LLMRequest) -> LLMResult:
        sw = stopwatch()
        state = request.context.get("state", {})
        calls: tuple[ToolCall, ...] = ()
        stop = "end_turn"
        if request.purpose == "synthesis":
            text = json.dumps(plan(state), indent=2, ensure_ascii=False)
        elif request.purpose == "contribution":
            text = voices.contribution(request.agent, state)
        else:
            text, calls = self._act(request)
            stop = "tool_use" if calls else "end_turn"
        prompt = request.system + "".join(m.content for m in request.messages)
        return LLMResult(
            text=text,
            tool_calls=calls,
            usage=Usage(_tokens(prompt), _tokens(text) if text else 1, 0),
            model=self.model,
            provider=self.name,
            latency_s=sw.elapsed(),
            stop_reason=stop,
        )

    def _act(self, request: LLMRequest) -> tuple[str, tuple[ToolCall, ...]]:
        results = [m for m in request.messages if m.role == "tool"]
        if not results:
            action = request.context.get("action", {}).get("action", "")
            choice = choose_tool(action)
            if choice is None:
                return "RESULT: failed — the offline executive found no tool that fits this action.", ()
            name, args = choice
            if name not in {t.name for t in request.tools}:
                return f"RESULT: failed — tool {name} is not available to this agent.", ()
            return f"(offline provider) Calling {name}.", (ToolCall(f"call_{len(request.messages)}", name, args),)
        last = results[-1]
        verdict = "failed" if last.is_error else "succeeded"
        return f"RESULT: {verdict} — {last.name}: {last.content[:300]}", ()
