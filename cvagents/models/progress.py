"""Progress bars for the steps that take seconds to minutes inside a heartbeat — training,
evaluation, traffic replay — so a terminal or a notebook is not silent meanwhile.

``tqdm.auto``: a widget in a notebook, a bar on stderr in a terminal. Never on stdout (results go
there) and never journaled. Off where stderr is not a terminal and there is no notebook (tests,
a log redirected to a file, a script run by ``run_python_script``): tqdm's ``disable=None``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], desc: str, *, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """``items``, with a bar named ``desc`` that goes away when they are done."""
    from tqdm.auto import tqdm

    yield from tqdm(items, desc=desc, total=total, unit=unit, file=sys.stderr, disable=None, leave=False)
