"""The package's one exception base.

``CVAgentsError`` and its subclasses are *known* failures a user can act on — a bad config, a
damaged journal, a refused handoff, a workspace in use: the CLI prints them as one line
(``error: <path>: <what>``: the message starts with the file, folder or option at fault) and
exits with code 2. Anything else is a bug and shows as one, with its traceback. Each module
keeps its own subclass next to the code that raises it.
"""

from __future__ import annotations


class CVAgentsError(Exception):
    """A failure the user can act on; its message says what and where."""

    #: the CLI's exit code for this kind of failure
    exit_code: int = 2
