"""Synthetic multimodal retrieval data: coloured shapes rendered as small images, plus text.

Everything is generated on the spot from a seed, so no download is needed and the same seed always
gives the same tensors. An image has five attributes (shape, color, size, position, background).
A query names an object (color + shape) and two modifiers, e.g. "a large red circle on the left".
Graded relevance of an image to a query (what a human judge would say):

    0  different object (color or shape differs), whatever else matches
    1  same object, neither modifier matches
    2  same object, one modifier matches
    3  same object, both modifiers match (exact match)
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from cvagents.durability.atomic import atomic_write_bytes
from cvagents.durability.hashing import sha256_file

DATASET_NAME = "cvagents-synthetic-shapes-retrieval"
DATASET_VERSION = "1.0"
IMAGE_SIZE = 24

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "shape": ("circle", "square", "triangle", "diamond", "cross", "ring"),
    "color": ("red", "green", "blue", "yellow", "magenta", "cyan", "orange", "purple"),
    "size": ("small", "large"),
    "position": ("left", "center", "right"),
    "background": ("dark", "light", "striped"),
}
ATTR_NAMES = tuple(ATTRIBUTES)
MODIFIERS = ("size", "position", "background")
ALIASES = {
    "centre": "center",
    "middle": "center",
    "big": "large",
    "tiny": "small",
    "little": "small",
    "bright": "light",
    "black": "dark",
    "stripes": "striped",
    "violet": "purple",
    "pink": "magenta",
}
RELEVANCE_SCALE = {
    "0": "different object (color or shape differs)",
    "1": "same color and shape, neither modifier matches",
    "2": "same color and shape, one of the two modifiers matches",
    "3": "exact match: color, shape and both modifiers",
}
FILES = ("gallery.pt", "queries.json", "qrels.json")

_RGB = torch.tensor(
    [
        [1.0, 0.05, 0.05],
        [0.05, 0.8, 0.05],
        [0.1, 0.2, 1.0],
        [1.0, 0.95, 0.05],
        [1.0, 0.05, 1.0],
        [0.05, 0.95, 0.95],
        [1.0, 0.5, 0.0],
        [0.5, 0.05, 0.85],
    ]
)


def derive_seed(seed: int, stream: str) -> int:
    """Independent, reproducible seed per stream (so train and validation never share draws)."""
    return int(hashlib.sha256(f"{seed}:{stream}".encode()).hexdigest()[:15], 16)


def vocabulary() -> list[str]:
    """Index 0 is padding; then every attribute word, in ATTRIBUTES order."""
    return ["<pad>"] + [w for values in ATTRIBUTES.values() for w in values]


def attribute_token_ids() -> torch.Tensor:
    """[num_attributes, max_values] table: token id of value v of attribute a (0 = unused)."""
    vocab = {w: i for i, w in enumerate(vocabulary())}
    width = max(len(v) for v in ATTRIBUTES.values())
    table = torch.zeros(len(ATTRIBUTES), width, dtype=torch.long)
    for a, values in enumerate(ATTRIBUTES.values()):
        table[a, : len(values)] = torch.tensor([vocab[w] for w in values])
    return table


def sample_attributes(n: int, gen: torch.Generator) -> torch.Tensor:
    """[n, 5] long tensor of attribute value indices, uniform per attribute."""
    cols = [torch.randint(len(v), (n,), generator=gen) for v in ATTRIBUTES.values()]
    return torch.stack(cols, dim=1)


def render(attrs: torch.Tensor, gen: torch.Generator, size: int = IMAGE_SIZE) -> torch.Tensor:
    """Draw one noisy image per attribute row: float [n, 3, size, size] in [0, 1]."""
    n = attrs.shape[0]
    u = lambda *shape: torch.rand(*shape, generator=gen)  # noqa: E731
    shape, color, sz, pos, bg = attrs.unbind(1)
    cx = torch.tensor([0.27, 0.5, 0.73])[pos] * size + (u(n) - 0.5) * 3.0
    cy = 0.5 * size + (u(n) - 0.5) * 5.0
    r = torch.tensor([0.18, 0.3])[sz] * size * (0.9 + 0.2 * u(n))
    grid = torch.arange(size, dtype=torch.float32) + 0.5
    dx = (grid.view(1, 1, -1) - cx.view(-1, 1, 1)) / r.view(-1, 1, 1)
    dy = (grid.view(1, -1, 1) - cy.view(-1, 1, 1)) / r.view(-1, 1, 1)
    ax, ay, d2 = dx.abs(), dy.abs(), dx * dx + dy * dy
    masks = torch.stack(
        [
            d2 <= 1.0,  # circle
            torch.maximum(ax, ay) <= 0.8,  # square
            (dy >= -1.0) & (dy <= 0.75) & (ax <= (dy + 1.0) * 0.55),  # triangle (apex up)
            ax + ay <= 1.05,  # diamond
            ((ax <= 0.3) & (ay <= 1.0)) | ((ay <= 0.3) & (ax <= 1.0)),  # cross
            (d2 <= 1.0) & (d2 >= 0.3),  # ring
        ]
    )
    mask = masks[shape, torch.arange(n)].unsqueeze(1).float()  # [n, 1, H, W]
    level = torch.tensor([0.12, 0.82, 0.0])[bg] + (u(n) - 0.5) * 0.1
    phase = torch.randint(3, (n, 1, 1), generator=gen)
    stripes = (((grid.view(1, 1, -1) + grid.view(1, -1, 1)).long() + phase) // 3 % 2).float()
    background = torch.where((bg == 2).view(-1, 1, 1), 0.3 + 0.3 * stripes, level.view(-1, 1, 1))
    rgb = (_RGB[color] + torch.randn(n, 3, generator=gen) * 0.05).clamp(0, 1)
    img = background.unsqueeze(1) * (1 - mask) + rgb.view(n, 3, 1, 1) * mask
    img = img + torch.randn(img.shape, generator=gen) * 0.06
    return img.clamp(0, 1)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    return (images * 255).round().to(torch.uint8)


def describe(attrs: list[int], modifiers: list[str], rng: torch.Generator) -> str:
    """A natural-ish query string for an object plus the chosen modifiers."""
    word = {a: ATTRIBUTES[a][attrs[i]] for i, a in enumerate(ATTR_NAMES)}
    pick = lambda options: options[int(torch.randint(len(options), (1,), generator=rng))]  # noqa: E731
    obj = f"{word['color']} {word['shape']}"
    if "size" in modifiers:
        obj = f"{word['size']} {obj}"
    parts = [pick(["a", "a photo of a", "an image of a", "show me a", "find a"]) + " " + obj]
    if "position" in modifiers:
        p = word["position"]
        parts.append("in the center" if p == "center" else pick([f"on the {p}", f"at the {p}"]))
    if "background" in modifiers:
        parts.append(pick([f"on a {word['background']} background", f"against a {word['background']} background"]))
    return " ".join(parts)


def relevance_matrix(query_attrs: torch.Tensor, query_mods: torch.Tensor, item_attrs: torch.Tensor) -> torch.Tensor:
    """Graded relevance [Q, N] (int64, 0..3); query_mods is a [Q, 5] bool mask of named modifiers."""
    eq = query_attrs.unsqueeze(1) == item_attrs.unsqueeze(0)  # [Q, N, 5]
    same_object = eq[..., 0] & eq[..., 1]
    matched_mods = (eq & query_mods.unsqueeze(1))[..., 2:].sum(-1)
    return torch.where(same_object, 1 + matched_mods, torch.zeros_like(matched_mods))


@dataclass
class ValidationSet:
    images: torch.Tensor  # float [N, 3, H, W] in [0, 1]
    item_attrs: torch.Tensor  # long [N, 5]
    queries: list[dict[str, Any]]
    relevance: torch.Tensor  # long [Q, N]
    info: dict[str, Any]

    @property
    def texts(self) -> list[str]:
        return [q["text"] for q in self.queries]


def generate_validation(seed: int, num_items: int = 1600, num_queries: int = 400) -> ValidationSet:
    """Gallery + known-item style queries (each query is built from a gallery image, so every
    query has at least one exact match)."""
    gen = torch.Generator().manual_seed(derive_seed(seed, "validation"))
    item_attrs = sample_attributes(num_items, gen)
    images = render(item_attrs, gen)
    anchors = torch.randint(num_items, (num_queries,), generator=gen)
    drop = torch.randint(len(MODIFIERS), (num_queries,), generator=gen)  # the modifier left out
    mods = torch.ones(num_queries, len(ATTR_NAMES), dtype=torch.bool)
    mods[:, :2] = False
    mods[torch.arange(num_queries), 2 + drop] = False
    q_attrs = item_attrs[anchors]
    queries = []
    for i in range(num_queries):
        named = [m for j, m in enumerate(MODIFIERS) if mods[i, 2 + j]]
        a = q_attrs[i].tolist()
        queries.append(
            {
                "id": f"q{i:04d}",
                "text": describe(a, named, gen),
                "attributes": {n: ATTRIBUTES[n][a[k]] for k, n in enumerate(ATTR_NAMES) if k < 2 or n in named},
            }
        )
    rel = relevance_matrix(q_attrs, mods, item_attrs)
    return ValidationSet(images, item_attrs, queries, rel, {"seed": seed})


def generate_training(seed: int, num_items: int = 12000) -> tuple[torch.Tensor, torch.Tensor]:
    """Training split (separate seed stream from validation): float images and attributes."""
    gen = torch.Generator().manual_seed(derive_seed(seed, "train"))
    attrs = sample_attributes(num_items, gen)
    return render(attrs, gen), attrs


def write_validation(vs: ValidationSet, out_dir: Path) -> dict[str, Any]:
    """Write gallery.pt / queries.json / qrels.json, then dataset_info.json last (it marks completion)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save({"images": to_uint8(vs.images), "attributes": vs.item_attrs, "attribute_names": list(ATTR_NAMES)}, buf)
    atomic_write_bytes(out_dir / "gallery.pt", buf.getvalue())
    atomic_write_bytes(out_dir / "queries.json", json.dumps(vs.queries, indent=1).encode())
    qrels = {
        q["id"]: {str(j): int(r) for j, r in zip(row.nonzero().flatten().tolist(), row[row > 0].tolist())}
        for q, row in zip(vs.queries, vs.relevance)
    }
    atomic_write_bytes(out_dir / "qrels.json", json.dumps(qrels).encode())
    counts = torch.bincount(vs.relevance.flatten(), minlength=4).tolist()
    info = {
        "name": DATASET_NAME,
        "version": DATASET_VERSION,
        "seed": vs.info["seed"],
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "generator": "cvagents.models.data.generate_validation",
        "task": "text-to-image retrieval",
        "counts": {
            "gallery_images": int(vs.images.shape[0]),
            "queries": len(vs.queries),
            "judgments_nonzero": int((vs.relevance > 0).sum()),
            "judgments_by_grade": {str(g): c for g, c in enumerate(counts)},
        },
        "image_shape": list(vs.images.shape[1:]),
        "attributes": {k: list(v) for k, v in ATTRIBUTES.items()},
        "relevance_scale": RELEVANCE_SCALE,
        "files": [
            {"name": f, "bytes": (out_dir / f).stat().st_size, "sha256": sha256_file(out_dir / f)} for f in FILES
        ],
    }
    atomic_write_bytes(out_dir / "dataset_info.json", json.dumps(info, indent=2).encode())
    return info


def read_info(val_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((Path(val_dir) / "dataset_info.json").read_text())
    except (OSError, ValueError):
        return None


def load_validation(val_dir: str | Path) -> ValidationSet:
    """Read a directory written by write_validation (missing files raise FileNotFoundError)."""
    val_dir = Path(val_dir)
    for name in ("dataset_info.json", *FILES):
        if not (val_dir / name).is_file():
            raise FileNotFoundError(f"validation set incomplete: {val_dir / name} not found")
    info = json.loads((val_dir / "dataset_info.json").read_text())
    gallery = torch.load(val_dir / "gallery.pt", weights_only=True)
    queries = json.loads((val_dir / "queries.json").read_text())
    qrels = json.loads((val_dir / "qrels.json").read_text())
    images = gallery["images"].float() / 255.0
    rel = torch.zeros(len(queries), images.shape[0], dtype=torch.long)
    for i, q in enumerate(queries):
        judged = qrels.get(q["id"], {})
        if judged:
            rel[i, torch.tensor([int(j) for j in judged])] = torch.tensor(list(judged.values()))
    return ValidationSet(images, gallery["attributes"], queries, rel, info)
