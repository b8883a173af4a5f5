"""The ML model behind the rollout: any model, through its adapter, and the demo dual encoder.

create_artifacts (train the demo + write the workspace files), evaluate_model (metrics for the
gates, through a model adapter), Retriever (the demo's serving path), load_checkpoint (safe,
weights_only loading). They are imported on first use, so that the adapter seam, the
validation-set contract and the registry (``cvagents.models.adapter``, ``collection``,
``registry``) load without torch: a model that is not the demo's never pays for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cvagents.models.demo_adapter import Retriever
    from cvagents.models.dual_encoder import DualEncoder, load_checkpoint, save_checkpoint
    from cvagents.models.evaluate import evaluate_model
    from cvagents.models.train import create_artifacts

_WHERE = {
    "create_artifacts": "cvagents.models.train",
    "evaluate_model": "cvagents.models.evaluate",
    "Retriever": "cvagents.models.demo_adapter",
    "load_checkpoint": "cvagents.models.dual_encoder",
    "save_checkpoint": "cvagents.models.dual_encoder",
    "DualEncoder": "cvagents.models.dual_encoder",
}

__all__ = ["create_artifacts", "evaluate_model", "Retriever", "load_checkpoint", "save_checkpoint", "DualEncoder"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
