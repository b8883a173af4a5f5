"""The run's log: ``executive.log`` in the guide's style, and the same lines on the console,
each line redacted (no API key, registered or key-shaped, reaches either)."""

from __future__ import annotations

import logging
import sys

from cvagents.secrets import install_log_redaction
from cvagents.workspace import Workspace

__all__ = ["setup_logging", "remove_logging"]

LOGGER = "cvagents"


def setup_logging(ws: Workspace, console: bool = True) -> list[logging.Handler]:
    """Attach the run's handlers to the ``cvagents`` logger; returns them for ``remove_logging``."""
    fmt = logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S")
    handlers: list[logging.Handler] = [logging.FileHandler(ws.log_file, encoding="utf-8")]
    if console:
        # the console is stdout as the caller has it: a notebook shows the lines as ordinary
        # output; `cvagents run` points stdout at stderr for the run, so its stdout carries only
        # the result
        handlers.append(logging.StreamHandler(sys.stdout))
    root = logging.getLogger(LOGGER)
    root.setLevel(logging.INFO)
    for h in handlers:
        h.setFormatter(fmt)
        install_log_redaction(h)
        root.addHandler(h)
    return handlers


def remove_logging(handlers: list[logging.Handler]) -> None:
    root = logging.getLogger(LOGGER)
    for h in handlers:
        root.removeHandler(h)
        h.close()
