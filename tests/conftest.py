import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


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
