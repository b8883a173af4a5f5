import pytest

from cvagents.ui.monitor import Dashboard


@pytest.fixture(autouse=True)
def _stop_dashboards():
    """No dashboard's refresh thread outlives its test."""
    yield
    for d in list(Dashboard._running.values()):
        d.stop()
    Dashboard._running.clear()
