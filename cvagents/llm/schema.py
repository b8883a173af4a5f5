"""A JSON schema (a pydantic model's ``model_json_schema()``) made acceptable to each API's
native structured output, converted once per schema object and kept.

- OpenAI ``strict`` mode wants every object closed (``additionalProperties: false``) and every
  property listed in ``required``, and refuses keywords it cannot enforce (``default``,
  ``minLength``, ``maxLength``). A property that had a default becomes required: any value the
  model then gives is still one the model accepts, and the caller validates the answer anyway.
- Anthropic: the SDK's own public ``anthropic.transform_schema`` (see the provider).
- Gemini: ``response_json_schema`` takes JSON Schema as it is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_STRICT_UNSUPPORTED = frozenset({"default", "minLength", "maxLength"})


def openai_strict(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` for OpenAI's ``response_format`` ``json_schema`` with ``strict: true``."""

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(x) for x in node]
        if not isinstance(node, dict):
            return node
        out = {k: walk(v) for k, v in node.items() if k not in _STRICT_UNSUPPORTED}
        if out.get("type") == "object" or "properties" in out:
            props = out.get("properties") or {}
            out["properties"] = props
            out["required"] = list(props)
            out["additionalProperties"] = False
        return out

    return walk(schema)


class ConvertOnce:
    """``convert(x)`` computed once per object ``x`` and kept: a schema dict, or a tuple of
    ``ToolSpec`` (keyed by its items, so a fresh tuple of the same tools hits too).

    Schemas and tool specs are built once and then only read, so identity is a cheap, stable
    key (the originals are kept, so an id is never reused while cached). Converting 8 tools for
    the Gemini SDK on every call cost several milliseconds; a hit costs a dict lookup.
    """

    def __init__(self, convert: Callable[[Any], Any], limit: int = 256):
        self._convert = convert
        self._done: dict[Any, tuple[Any, Any]] = {}
        self._lock = threading.Lock()
        self._limit = limit

    def __call__(self, x: Any) -> Any:
        key = tuple(map(id, x)) if isinstance(x, tuple) else id(x)
        hit = self._done.get(key)
        if hit is not None:  # the originals are alive in the cache, so no other object has their ids
            return hit[1]
        value = self._convert(x)
        with self._lock:
            if len(self._done) >= self._limit:  # a caller building fresh objects per call: bounded
                self._done.clear()
            self._done[key] = (x, value)
        return value


def schema_name(schema: dict[str, Any]) -> str:
    """A name for the schema as the APIs want it (``^[a-zA-Z0-9_-]{1,64}$``)."""
    title = str(schema.get("title") or "response")
    name = "".join(c if c.isalnum() or c in "_-" else "_" for c in title)[:64]
    return name or "response"
