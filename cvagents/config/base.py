"""What both config schemas share: the strict base model, the error that names its own key, and
the rule for paths inside the workspace."""

from __future__ import annotations

from pathlib import PurePosixPath

from pydantic import BaseModel, ConfigDict


class KeyedValueError(ValueError):
    """A check across keys that names the key at fault itself (reported as ``key: message``)."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


class Strict(BaseModel):
    """Unknown keys are refused; loaded values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def workspace_relative(value: str) -> str:
    """``value`` if it is a path relative to the workspace that stays inside it; else ValueError.
    A layout path that is absolute, or climbs out with ``..``, would make the run read and write
    outside the folder it was given."""
    p = PurePosixPath(value)
    if not value.strip() or p.is_absolute() or value.startswith("~") or ".." in p.parts:
        raise ValueError("expected a path relative to the workspace and inside it (no leading / or ~, no ..)")
    return value
