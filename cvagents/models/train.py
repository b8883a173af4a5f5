"""Contrastive (multi-positive InfoNCE) training of the dual encoder, and the workspace artifacts.

Captions are built from an image's attributes: always the object (color + shape), each modifier
with probability 1/2. In a batch, every image that satisfies all the words of a caption is a
positive for it (not only the image the caption was drawn from), so no true match is pushed away.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from cvagents.clock import stopwatch
from cvagents.durability.atomic import atomic_write_bytes
from cvagents.durability.hashing import sha256_file
from cvagents.errors import CVAgentsError
from cvagents.models import data
from cvagents.models.dual_encoder import DualEncoder, save_checkpoint
from cvagents.models.metrics import ndcg_at_k
from cvagents.models.progress import progress

MODEL_FILES = {"v1": "v1_production.pth", "degraded": "v1_degraded.pth"}
#: ``cvagents submit --demo <variant>`` trains the variant into research/<file> and submits it
DEMO_CANDIDATES = {"degraded": "v2_degraded.pth"}
# "degraded" simulates an annotation bug that shuffled the modifier words (size, position,
# background) between captions: the model still finds the right object but learns to ignore
# the rest of the query, so its NDCG@10 lands far below the 0.72 gate.
VARIANTS: dict[str, dict[str, Any]] = {
    "v1": {"steps": 350, "batch_size": 128, "lr": 3e-3, "modifier_prob": 0.5, "modifier_noise": 0.0},
    "degraded": {"steps": 120, "batch_size": 128, "lr": 3e-3, "modifier_prob": 0.5, "modifier_noise": 1.0},
}
TRAIN_IMAGES = 8000
# One thread: small batches gain little from a second one, run-to-run results are reproducible,
# and training does not starve the agents running on the same (2-core) machine.
NUM_THREADS = 1


@contextlib.contextmanager
def deterministic(num_threads: int = NUM_THREADS) -> Iterator[None]:
    """Fixed thread count + deterministic kernels for the duration; previous settings restored."""
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(num_threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(det)
        torch.set_num_threads(threads)


def caption_batch(
    attrs: torch.Tensor, modifier_prob: float, gen: torch.Generator, modifier_noise: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Captions for images with attributes ``attrs`` [B, 5]: token ids [B, 5] (0 = word left out),
    the attributes the caption states [B, 5] (a modifier is replaced by a random value with
    probability ``modifier_noise``) and the [B, 5] mask of attributes it names."""
    named = torch.rand(attrs.shape, generator=gen) < modifier_prob
    named[:, :2] = True
    noisy = torch.rand(attrs.shape, generator=gen) < modifier_noise
    noisy[:, :2] = False
    sizes = torch.tensor([len(v) for v in data.ATTRIBUTES.values()])
    random_values = (torch.rand(attrs.shape, generator=gen) * sizes).long()
    stated = torch.where(noisy, random_values, attrs)
    tokens = data.attribute_token_ids()[torch.arange(attrs.shape[1]), stated]
    return tokens * named, stated, named


def contrastive_loss(
    model: DualEncoder,
    images: torch.Tensor,
    attrs: torch.Tensor,
    tokens: torch.Tensor,
    stated: torch.Tensor,
    named: torch.Tensor,
) -> torch.Tensor:
    img = model.encode_images(images)
    txt = model.encode_token_batch(tokens)
    logits = model.logit_scale.exp() * txt @ img.T  # [captions, images]
    # positive[i, j]: image j is the one caption i was written for, or has every attribute the
    # caption names (as far as the caption says)
    pos = ((stated.unsqueeze(1) == attrs.unsqueeze(0)) | ~named.unsqueeze(1)).all(-1)
    pos |= torch.eye(len(pos), dtype=torch.bool)
    neg_inf = torch.finfo(logits.dtype).min
    t2i = torch.logsumexp(logits, 1) - torch.logsumexp(logits.masked_fill(~pos, neg_inf), 1)
    i2t = torch.logsumexp(logits, 0) - torch.logsumexp(logits.masked_fill(~pos, neg_inf), 0)
    return (t2i.mean() + i2t.mean()) / 2


def train(variant: str = "v1", seed: int = 0, steps: int | None = None) -> tuple[DualEncoder, dict[str, Any]]:
    """Train one model from scratch; returns it (eval mode) and training stats."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {sorted(VARIANTS)}")
    hp = {**VARIANTS[variant], **({"steps": steps} if steps is not None else {})}
    with deterministic():
        sw = stopwatch()
        images, attrs = data.generate_training(seed, TRAIN_IMAGES)
        t_data = sw.elapsed()
        torch.manual_seed(data.derive_seed(seed, f"init:{variant}"))
        # Module.to(memory_format=...) works at run time; torch's stubs do not list it.
        model = DualEncoder(data.vocabulary()).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        opt = torch.optim.Adam(model.parameters(), lr=hp["lr"])
        gen = torch.Generator().manual_seed(data.derive_seed(seed, f"batches:{variant}"))
        model.train()
        losses = []
        for step in progress(range(hp["steps"]), f"training {variant}", unit="step"):
            for g in opt.param_groups:  # cosine decay
                g["lr"] = hp["lr"] * 0.5 * (1 + math.cos(math.pi * step / hp["steps"]))
            idx = torch.randint(len(attrs), (hp["batch_size"],), generator=gen)
            tokens, stated, named = caption_batch(attrs[idx], hp["modifier_prob"], gen, hp["modifier_noise"])
            loss = contrastive_loss(model, images[idx], attrs[idx], tokens, stated, named)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
            losses.append(loss.item())
        model = model.to(memory_format=torch.contiguous_format).eval()
    stats = {
        "steps": hp["steps"],
        "batch_size": hp["batch_size"],
        "lr": hp["lr"],
        "modifier_prob": hp["modifier_prob"],
        "modifier_noise": hp["modifier_noise"],
        "train_images": TRAIN_IMAGES,
        "final_loss": round(sum(losses[-20:]) / len(losses[-20:]), 5),
        "data_seconds": round(t_data, 3),
        "train_seconds": round(sw.elapsed(), 3),
        "num_threads": NUM_THREADS,
    }
    model.metadata = {"variant": variant, "seed": seed, "train": stats, "torch_version": str(torch.__version__)}
    return model, stats


@torch.inference_mode()
def validation_ndcg(model: DualEncoder, vs: data.ValidationSet, k: int = 10) -> float:
    scores = model.encode_text(vs.texts) @ model.encode_images(vs.images).T
    return ndcg_at_k(scores, vs.relevance, k=k)


def ensure_validation_set(val_dir: Path, seed: int) -> tuple[data.ValidationSet, bool]:
    """Reuse the set on disk when this generator version made it with this seed and its files
    still match the sha256 recorded in dataset_info.json; otherwise write it anew."""
    val_dir = Path(val_dir)
    info = data.read_info(val_dir)
    if info and info.get("seed") == seed and info.get("version") == data.DATASET_VERSION:
        try:
            recorded = {f["name"]: f["sha256"] for f in info["files"]}
            if all(sha256_file(val_dir / name) == recorded.get(name) for name in data.FILES):
                return data.load_validation(val_dir), False
        except Exception:  # noqa: BLE001 - a damaged set is simply regenerated
            pass
    data.write_validation(data.generate_validation(seed), val_dir)
    return data.load_validation(val_dir), True  # as stored (uint8 images), as evaluate_model sees it


def install_evaluation_script(research_dir: Path) -> Path:
    """Copy the packaged evaluation script to <research_dir>/evaluate_model.py."""
    src = resources.files("cvagents.models").joinpath("scripts", "evaluate_model.py")
    dst = Path(research_dir) / "evaluate_model.py"
    atomic_write_bytes(dst, src.read_bytes())
    return dst


class DemoSetError(CVAgentsError):
    """A demo model asked for in a workspace whose validation set is not the demo's."""


def demo_seed(val_dir: Path) -> int:
    """The seed of the demo's validation set in ``val_dir`` (0, v1's default, when there is none
    yet), so a demo candidate is trained and judged on the set v1 was; a set that is not the
    demo's is refused rather than overwritten."""
    val_dir = Path(val_dir)
    if not (val_dir / "dataset_info.json").exists():
        return 0
    info = data.read_info(val_dir)
    if not info or info.get("name") != data.DATASET_NAME or not isinstance(info.get("seed"), int):
        raise DemoSetError(
            f"{val_dir}: not the demo's validation set (dataset_info.json names {(info or {}).get('name')!r}); "
            "a demo model needs the one `cvagents create-artifacts` writes"
        )
    return info["seed"]


def create_artifacts(
    workspace: Path, variant: str = "v1", seed: int = 0, model_file: str | None = None
) -> dict[str, Any]:
    """Train ``variant`` and write research/<model_file> (default: the guide's name for the
    variant), data/validation_set/ and research/evaluate_model.py under ``workspace`` (laid out
    as in the system guide)."""
    if variant not in MODEL_FILES:
        raise ValueError(f"unknown variant {variant!r}; expected one of {sorted(MODEL_FILES)}")
    workspace = Path(workspace)
    research = workspace / "research"
    val_dir = workspace / "data" / "validation_set"
    sw = stopwatch()
    vs, val_created = ensure_validation_set(val_dir, seed)
    model, stats = train(variant, seed)
    ndcg = validation_ndcg(model, vs)
    model_path = save_checkpoint(
        model,
        research / (model_file or MODEL_FILES[variant]),
        {
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "validation": {"seed": seed, "ndcg_at_10": round(ndcg, 6)},
        },
    )
    script = install_evaluation_script(research)
    return {
        "variant": variant,
        "seed": seed,
        "model_path": str(model_path),
        "model_sha256": sha256_file(model_path),
        "weights_sha256": model.metadata["weights_sha256"],
        "validation_set": str(val_dir),
        "validation_created": val_created,
        "evaluate_script": str(script),
        "train_seconds": stats["train_seconds"],
        "total_seconds": round(sw.elapsed(), 3),
        "validation_ndcg_at_10": round(ndcg, 6),
    }
