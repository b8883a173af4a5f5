"""Tool calls a model wrote as text instead of the API's ``tool_calls``.

Small local models often answer with the call itself as JSON — in a ```json block, bare, or in
``<tool_call>…</tool_call>`` tags — in the shapes local servers' own parsers accept (llama.cpp,
Ollama, vLLM): ``{"name": …, "arguments": {…}}``, ``{"name": …, "parameters": {…}}``,
``{"tool": …, "parameters"|"arguments"|"args": {…}}``, ``{"function": {"name": …, "arguments": …}}``
(arguments may be a JSON string), a list of those, or ``{"tool_calls": [...]}``.

``find_text_tool_calls`` only reads them: the executive says plainly that the model wrote a call
as text and, for an agent in lenient mode, runs it through the registry like any other call.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["TextToolCall", "find_text_tool_calls"]

_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_FENCED = re.compile(r"```[a-zA-Z_]*\s*\n(.*?)```", re.DOTALL)
_ARG_KEYS = ("arguments", "parameters", "args", "input")


@dataclass(frozen=True)
class TextToolCall:
    name: str
    arguments: dict[str, Any]


def _arguments(value: Any) -> dict[str, Any] | None:
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError:
            return None
    return value if isinstance(value, dict) else None


def _call(obj: Any) -> TextToolCall | None:
    """One call from one JSON object in any of the accepted shapes, or None."""
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("function"), dict):
        return _call(obj["function"])
    name = obj.get("name", obj.get("tool"))
    if not isinstance(name, str) or not name.strip():
        return None
    present = [k for k in _ARG_KEYS if k in obj]
    if not present and set(obj) - {"name", "tool", "type", "id"}:
        return None  # some other object that happens to have a name
    args = _arguments(obj[present[0]]) if present else {}
    return TextToolCall(name.strip(), args) if args is not None else None


def _calls(value: Any) -> list[TextToolCall]:
    if isinstance(value, dict) and isinstance(value.get("tool_calls"), list):
        value = value["tool_calls"]
    items = value if isinstance(value, list) else [value]
    calls = [_call(v) for v in items]
    return [c for c in calls if c is not None] if all(c is not None for c in calls) else []


def _objects(text: str) -> list[Any]:
    """Every top-level JSON object or list in ``text``, in order."""
    out: list[Any] = []
    dec, i = json.JSONDecoder(), 0
    while True:
        starts = [j for j in (text.find("{", i), text.find("[", i)) if j >= 0]
        if not starts:
            return out
        j = min(starts)
        try:
            value, end = dec.raw_decode(text, j)
        except json.JSONDecodeError:
            i = j + 1
            continue
        out.append(value)
        i = end


def find_text_tool_calls(text: str) -> list[TextToolCall]:
    """The tool calls written in ``text`` (tagged first, then fenced blocks, then bare JSON), in
    order; empty when it holds none."""
    if not text or ("{" not in text):
        return []
    for pattern in (_TAGGED, _FENCED):
        found = [c for block in pattern.findall(text) for v in _objects(block) for c in _calls(v)]
        if found:
            return found
    return [c for v in _objects(text) for c in _calls(v)]
