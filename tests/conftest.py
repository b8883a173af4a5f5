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
