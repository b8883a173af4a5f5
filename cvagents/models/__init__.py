"""The ML model behind the rollout: a small text-to-image dual encoder trained on synthetic data.

create_artifacts (train + write the workspace files), evaluate_model (metrics for the gates),
Retriever (serving path), load_checkpoint (safe, weights_only loading).
"""

from cvagents.models.dual_encoder import DualEncoder, load_checkpoint, save_checkpoint
from cvagents.models.evaluate import Retriever, evaluate_model
from cvagents.models.train import create_artifacts

__all__ = ["create_artifacts", "evaluate_model", "Retriever", "load_checkpoint", "save_checkpoint", "DualEncoder"]
