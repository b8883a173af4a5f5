"""Moved to ``cvagents.ui.dashboard``; this name stays so that notebooks and scripts written
against it keep working (it is the same module object, not a copy)."""

import sys

from cvagents.ui import dashboard as _moved

sys.modules[__name__] = _moved
