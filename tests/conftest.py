import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


# The tests never write to the user's cache folder (config/prices.py keeps looked-up list prices in
# $XDG_CACHE_HOME/cvagents); subprocesses inherit it.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="cvagents-tests-cache-")


@pytest.fixture
def project_root() -> Path:
    return ROOT


@pytest.fixture
def config_copy(tmp_path) -> Path:
    """A writable copy of configs/ and prompts/ to break on purpose."""
    root = tmp_path / "project"
    shutil.copytree(ROOT / "configs", root / "configs")
    shutil.copytree(ROOT / "prompts", root / "prompts")
    shutil.copytree(ROOT / "reports", root / "reports")
    return root


@pytest.fixture(scope="session")
def trained_artifacts(tmp_path_factory) -> Path:
    """The demo model and validation set, trained once per test session."""
    from cvagents.models import create_artifacts

    ws = tmp_path_factory.mktemp("artifacts")
    create_artifacts(ws, variant="v1")
    return ws


@pytest.fixture
def seeded_workspace(tmp_path, trained_artifacts) -> Path:
    """A fresh workspace that already holds the trained model (create_v1_artifacts is then a no-op)."""
    ws = tmp_path / "ws"
    for sub in ("research", "data"):
        shutil.copytree(trained_artifacts / sub, ws / sub)
    return ws


@pytest.fixture(scope="session")
def degraded_artifacts(trained_artifacts, tmp_path_factory) -> Path:
    """The deliberately worse candidate (research/v1_degraded.pth, ~5 s to train), made once per
    session on the same validation set as the v1 model."""
    from cvagents.models import create_artifacts

    ws = tmp_path_factory.mktemp("degraded")
    shutil.copytree(trained_artifacts / "data", ws / "data")
    create_artifacts(ws, variant="degraded")
    return ws


@pytest.fixture(scope="session")
def run_ws(trained_artifacts, tmp_path_factory) -> Path:
    """The workspace of one short offline run, shared by the dashboard, plot and browser tests."""
    from test_dashboard_workspace import run_workspace

    return run_workspace(trained_artifacts, tmp_path_factory.getbasetemp())


@pytest.fixture
def ws_copy(run_ws, tmp_path) -> Path:
    """A copy of that run's reports, metrics and sessions, to change at will."""
    dst = tmp_path / "ws"
    for sub in ("reports", "runs/report", "sessions"):
        shutil.copytree(run_ws / sub, dst / sub)
    return dst


@pytest.fixture
def scripted_provider():
    """A fresh ``ScriptedProvider`` (tests/fakes.py): ``enqueue`` replies per agent or for
    everyone; it answers as the offline provider once a queue is empty and records every request."""
    from fakes import ScriptedProvider

    return ScriptedProvider()


@pytest.fixture
def span_exporter():
    """Tracing on (``cvagents.tracing``) into an OpenTelemetry SDK in-memory exporter; as the
    environment says again afterwards. ``span_exporter.get_finished_spans()``: the spans."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from cvagents import tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    assert tracing.configure(provider=provider)
    yield exporter
    tracing.reset()
    provider.shutdown()


@pytest.fixture(scope="session")
def local_ray():
    """A real local Ray (2 CPUs, no dashboard) for the Ray engine's tests, shut down at the end
    of the session. Its processes import tests/ (the toy adapters) and leave out a package whose
    slow import outlasts Ray's agent start-up limit (see tests/ray_imports)."""
    ray = pytest.importorskip("ray", reason="the Ray engine's tests need the ray extra: pip install cvagents[ray]")
    here = Path(__file__).resolve().parent
    path = os.pathsep.join(p for p in (str(here / "ray_imports"), str(here), os.environ.get("PYTHONPATH", "")) if p)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", path)  # the raylet, its agents and its workers inherit it
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
