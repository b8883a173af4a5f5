"""An adapter whose process dies (``os._exit``) in its first batched query, once per artifact: a
Ray worker lost in the middle of a shard. The marker file beside the artifact says it has died,
so the restarted worker answers."""

from __future__ import annotations

import os
from pathlib import Path

import toy_models

SPEC = "dying_models:load"


def marker(artifact: str | Path) -> Path:
    return Path(artifact).with_suffix(".died")


class Dying:
    def __init__(self, inner: toy_models.ToyAdapter, marker: Path):
        self.inner, self.marker = inner, marker

    def query(self, texts, k: int) -> list[list[str]]:
        if len(texts) > 1 and not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os._exit(1)
        return self.inner.query(texts, k)


def load(artifact: str, validation_set: str) -> Dying:
    return Dying(toy_models.load(artifact, validation_set), marker(artifact))
