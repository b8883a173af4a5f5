"""Moved to ``cvagents.ui.dashboard_data``; this name stays so that notebooks and scripts written
against it keep working (it is the same module object, not a copy)."""

import sys

from cvagents.ui import dashboard_data as _moved

sys.modules[__name__] = _moved
