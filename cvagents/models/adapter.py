"""The model adapter: the one place that knows how to load and query a model.

``serving.adapter`` (or a candidate's own ``--adapter``) names a factory as
``"package.module:factory"``. A factory takes the artifact's path and the validation-set folder
(for whatever corpus the model searches) and returns an adapter:

    factory(artifact_path: str, validation_set: str) -> adapter
    adapter.query(texts: list[str], k: int) -> list[list[str]]   # top-k document ids, best first
    adapter.close()                                               # optional

Evaluation and the traffic replay both go through it; the demo dual encoder is just the default
adapter (``cvagents.models.demo_adapter:load``). A factory that cannot be imported, or raises, is
an ``AdapterError`` carrying the adapter's own message.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cvagents.config.coordination import FACTORY_SPEC, Serving
from cvagents.errors import CVAgentsError

DEFAULT_ADAPTER = Serving().adapter


class AdapterError(CVAgentsError):
    """An adapter that cannot be imported, whose factory raised, or that answers wrongly."""


@runtime_checkable
class ModelAdapter(Protocol):
    def query(self, texts: Sequence[str], k: int) -> list[list[str]]: ...


Factory = Callable[[str, str], Any]


def check_spec(spec: object, where: str = "adapter") -> str:
    """``spec`` if it has the ``package.module:factory`` form, else an ``AdapterError``."""
    if not isinstance(spec, str) or not FACTORY_SPEC.fullmatch(spec):
        raise AdapterError(f'{where}: expected "package.module:factory", got {spec!r}')
    return spec


def load_factory(spec: str) -> Factory:
    """Import the factory ``spec`` names (nothing is loaded yet)."""
    check_spec(spec)
    module_name, attr = spec.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - an ImportError, or the module's own failure on import
        raise AdapterError(f"adapter {spec}: cannot import {module_name} ({type(e).__name__}: {e})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise AdapterError(f"adapter {spec}: {module_name} has no callable {attr}")
    return fn


def open_adapter(spec: str, artifact: str | Path, validation_set: str | Path) -> ModelAdapter:
    """Load the model ``artifact`` through the adapter ``spec``; its failure is an
    ``AdapterError`` with the adapter's own message."""
    factory = load_factory(spec)
    try:
        adapter = factory(str(artifact), str(validation_set))
    except Exception as e:  # noqa: BLE001 - whatever the user's factory raises
        raise AdapterError(f"adapter {spec} failed to load {artifact}: {type(e).__name__}: {e}"[:500]) from None
    if not callable(getattr(adapter, "query", None)):
        raise AdapterError(f"adapter {spec} returned {type(adapter).__name__}, which has no query(texts, k) method")
    return adapter


def answer_problem(answer: object, n: int) -> str | None:
    """What is wrong with an answer to ``query`` of ``n`` texts (None: a list of ``n`` lists of
    string ids, as the contract says)."""
    if not isinstance(answer, list) or len(answer) != n:
        got = f"a list of {len(answer)}" if isinstance(answer, list) else type(answer).__name__
        return f"expected a list of {n} ranked lists, got {got}"
    for row in answer:
        if not isinstance(row, (list, tuple)) or not all(isinstance(d, str) for d in row):
            return f"expected each ranked list to be a list of string ids, got {str(row)[:80]}"
    return None


def close_adapter(adapter: object) -> None:
    """Call the adapter's optional ``close``."""
    close = getattr(adapter, "close", None)
    if callable(close):
        close()
