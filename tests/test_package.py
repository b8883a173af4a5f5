"""cvagents as a package: the defaults ship inside it, `cvagents init` writes editable copies, a
run finds a project's own configs/ first, and a wheel installed (not editable) into a fresh venv
runs from a folder outside the checkout."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import site
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from cvagents.cli import main
from cvagents.config import CoordinationConfig, Settings, default_project_root, packaged_defaults
from cvagents.config.project import Written, init_project
from cvagents.workspace import HANDOFF_DOCS, Workspace

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = packaged_defaults()


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("part", ["configs", "prompts", "reports/handoff"])
def test_the_checkout_s_copies_are_the_packaged_defaults(part):
    """One configuration: the checkout's configs/, prompts/ and reports/handoff/ (what the README,
    the notebooks and the sync scripts name) are what `cvagents init .` writes, byte for byte.
    Edit cvagents/defaults/, then `cvagents init . --force`."""
    ours, shipped = ROOT / part, DEFAULTS / part
    assert _files(ours) == _files(shipped) and _files(shipped)
    _, differ, errors = filecmp.cmpfiles(ours, shipped, _files(shipped), shallow=False)
    assert not differ and not errors, f"{differ or errors} differ from {shipped}: edit the default, then init --force"


def test_the_packaged_defaults_load_and_name_only_their_own_prompts():
    s = Settings(DEFAULTS)
    assert len(s.meeting.agents) == 12
    assert all(s.prompt_path(a).is_relative_to(DEFAULTS / "prompts") for a in s.meeting.agents)


def test_init_writes_every_file_once_then_keeps_the_user_s_edits(tmp_path, capsys):
    proj = tmp_path / "proj"
    assert main(["init", str(proj)]) == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    shipped = _files(DEFAULTS / "configs") + _files(DEFAULTS / "prompts")
    assert len(lines) == len(shipped) == 14
    assert all(line.startswith("wrote ") for line in lines)
    assert (
        _files(proj / "configs") == _files(DEFAULTS / "configs")
        and (proj / "prompts/planning_team/critic.md").is_file()
    )
    assert "--project-root" in out.err and not (proj / "reports").exists()
    Settings(proj)  # a complete project

    cfg = proj / "configs" / "meeting.yaml"
    cfg.write_text(cfg.read_text().replace("rounds: 1", "rounds: 2"))
    assert main(["init", str(proj)]) == 0
    lines = capsys.readouterr().out.splitlines()
    kept = [line for line in lines if line.startswith("kept ")]
    assert kept == [f"kept     {cfg}  (yours differs; --force replaces it)"]
    assert sum(line.startswith("same ") for line in lines) == 13
    assert "rounds: 2" in cfg.read_text()

    assert main(["init", str(proj), "--force"]) == 0
    assert f"replaced {cfg}" in capsys.readouterr().out.splitlines()
    assert cfg.read_bytes() == (DEFAULTS / "configs" / "meeting.yaml").read_bytes()


def test_init_into_a_file_is_one_line_and_writes_nothing(tmp_path, capsys):
    blocker = tmp_path / "proj"
    blocker.write_text("not a folder")
    assert main(["init", str(blocker)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and str(blocker) in err and "\n" not in err
    assert blocker.read_text() == "not a folder"


def test_a_project_s_own_configs_come_first_then_the_checkout_s(tmp_path, monkeypatch):
    proj = tmp_path / "proj"
    assert [w for _, w in init_project(proj)] == [Written.WROTE] * 14
    assert default_project_root(proj) == proj.resolve()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert default_project_root(elsewhere) == ROOT  # imported from this checkout: its configs/
    monkeypatch.chdir(proj)
    (proj / "configs" / "meeting.yaml").write_text(
        (proj / "configs" / "meeting.yaml").read_text().replace("rounds: 1", "rounds: 3")
    )
    s = Settings()
    assert s.project_root == proj.resolve() and s.meeting.meeting.rounds == 3
    assert s.dotenv_path == proj.resolve() / ".env"
    assert Settings(DEFAULTS).dotenv_path == proj / ".env"  # never a file inside the package


def test_a_workspace_gets_the_handoff_docs_from_the_package_when_the_project_has_none(tmp_path):
    proj = tmp_path / "proj"
    init_project(proj)
    ws = Workspace.from_config(tmp_path / "ws", CoordinationConfig()).create(proj)
    for name in HANDOFF_DOCS:
        assert (ws.handoff_dir / name).read_bytes() == (DEFAULTS / "reports/handoff" / name).read_bytes()


def test_requirements_txt_is_pyproject_s_dependency_list():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert [line for line in lines if line] == deps


def test_every_runtime_dependency_is_imported_by_the_package():
    """Declared and never imported is dropped (or made an extra): each dependency's module appears
    in an import line of cvagents/."""
    modules = {"pyyaml": "yaml", "python-dotenv": "dotenv", "google-genai": "google.genai"}
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    source = "\n".join(p.read_text() for p in (ROOT / "cvagents").rglob("*.py"))
    unused = []
    for dep in deps:
        name = dep.split(">")[0].split("<")[0].split("=")[0].strip()
        module = modules.get(name, name.replace("-", "_"))
        pkg, _, sub = module.partition(".")
        forms = [f"import {module}", f"from {module} import", f"from {module}."]
        if sub:
            forms.append(f"from {pkg} import {sub}")
        if not any(f in source for f in forms):
            unused.append(dep)
    assert not unused, f"declared in pyproject.toml, imported nowhere in cvagents/: {unused}"


# --------------------------------------------------------------------------- a real install


def _clean_env() -> dict[str, str]:
    """The environment without the checkout on the import path."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A venv with cvagents installed from a wheel built off a copy of the checkout. The venv
    reuses this interpreter's installed packages (a .pth line; nothing downloaded), but not its
    cvagents: the one imported is the wheel's."""
    tmp = tmp_path_factory.mktemp("package")
    src = tmp / "src"
    shutil.copytree(ROOT / "cvagents", src / "cvagents", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip"]
    env = _clean_env()
    subprocess.run(
        [*pip, "wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "dist")],
        check=True,
        env=env,
        cwd=tmp,
    )
    wheel = next((tmp / "dist").glob("cvagents-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, env=env)
    py = venv / "bin" / "python"
    subprocess.run(
        [*pip, "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)], check=True, env=env
    )
    venv_site = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        ).stdout.strip()
    )
    (venv_site / "_reuse_test_packages.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return venv


def _in_venv(venv: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=600)


def test_the_installed_package_runs_on_its_packaged_defaults(installed, tmp_path):
    py = installed / "bin" / "python"
    probe = "import cvagents; from cvagents.config import Settings; s = Settings(); print(cvagents.__file__); print(s.project_root)"
    p = _in_venv(installed, [str(py), "-c", probe], cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    module, project = p.stdout.splitlines()
    assert Path(module).is_relative_to(installed) and not Path(module).is_relative_to(ROOT)
    assert Path(project) == Path(module).parent / "defaults"


def test_init_then_run_from_a_folder_outside_the_checkout(installed, tmp_path, seeded_workspace):
    cvagents = str(installed / "bin" / "cvagents")
    proj = tmp_path / "proj"
    p = _in_venv(installed, [cvagents, "init", str(proj)], cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.splitlines()) == 14
    cfg = proj / "configs" / "autonomous_coordination.yaml"
    text = cfg.read_text()
    assert "default_minutes: 10" in text
    cfg.write_text(text.replace("default_minutes: 10", "default_minutes: 7"))  # the project's own, edited

    run = [cvagents, "run", "--provider", "offline", "--meetings", "1", "--manual-clock", "--quiet", "--json"]
    p = _in_venv(installed, [*run, "--workspace", str(seeded_workspace)], cwd=proj)
    assert p.returncode == 0, p.stderr[-3000:]
    result = json.loads(p.stdout)
    assert result["meetings"] == 1 and result["status"] == "finished"
    descriptor = json.loads((seeded_workspace / "meta" / "workspace.json").read_text())
    assert descriptor["coordination"]["rollout"]["replay"]["default_minutes"] == 7
    for name in HANDOFF_DOCS:  # shipped from the package into the workspace
        assert (seeded_workspace / "reports" / "handoff" / name).is_file()
    executed = json.loads((seeded_workspace / "reports" / "handoff" / "pending_actions.json").read_text())
    assert executed["actions"]
