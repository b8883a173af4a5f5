"""The workspace: one folder holding a run's outputs, laid out as in the system guide.

No code writes outside the workspace it was given; every path comes from here.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from cvagents.config import CoordinationConfig, WorkspaceLayout, default_project_root

HANDOFF_DOCS = ("README.md", "pending_actions_TEMPLATE.json")


class Workspace:
    def __init__(self, root: Path, layout: WorkspaceLayout | None = None, stages: tuple[str, ...] = ()):
        self.root = Path(root).resolve()
        self.layout = layout or WorkspaceLayout()
        self.stages = tuple(stages)

    @classmethod
    def from_config(cls, root: Path, config: CoordinationConfig) -> Workspace:
        return cls(root, config.workspace, config.rollout.stages)

    def _p(self, rel: str) -> Path:
        return self.root / rel

    @property
    def planning_dir(self) -> Path:
        return self._p(self.layout.planning)

    @property
    def execution_dir(self) -> Path:
        return self._p(self.layout.execution)

    @property
    def handoff_dir(self) -> Path:
        return self._p(self.layout.handoff)

    @property
    def handoff_file(self) -> Path:
        return self.handoff_dir / "pending_actions.json"

    @property
    def metrics_file(self) -> Path:
        return self._p(self.layout.metrics)

    @property
    def evaluations_dir(self) -> Path:
        return self.metrics_file.parent / "evaluations"

    @property
    def deployment_dir(self) -> Path:
        return self._p(self.layout.deployment)

    def stage_dir(self, stage: str) -> Path:
        return self.deployment_dir / stage

    @property
    def research_dir(self) -> Path:
        return self._p(self.layout.research)

    @property
    def model_file(self) -> Path:
        return self.research_dir / "v1_production.pth"

    @property
    def validation_dir(self) -> Path:
        return self._p(self.layout.validation_set)

    @property
    def sessions_dir(self) -> Path:
        return self._p(self.layout.sessions)

    @property
    def log_file(self) -> Path:
        return self._p(self.layout.log)

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    def essential_files(self) -> list[Path]:
        """The guide's quick-status trio."""
        return [self.model_file, self.metrics_file, self.validation_dir / "dataset_info.json"]

    def create(self, project_root: Path | None = None) -> Workspace:
        """Make the layout and ship the handoff README and template (never overwriting)."""
        for d in (
            self.planning_dir,
            self.execution_dir,
            self.handoff_dir,
            self.metrics_file.parent,
            self.research_dir,
            self.sessions_dir,
        ):
            d.mkdir(parents=True, exist_ok=True)
        for stage in self.stages:
            self.stage_dir(stage).mkdir(parents=True, exist_ok=True)
        src = Path(project_root or default_project_root()) / "reports" / "handoff"
        for name in HANDOFF_DOCS:
            dst = self.handoff_dir / name
            if not dst.exists():
                if (src / name).is_file():
                    shutil.copyfile(src / name, dst)
                else:
                    logging.getLogger(__name__).warning("handoff doc %s not found in %s", name, src)
        return self

    def rel(self, path: Path) -> str:
        """A path as the reports show it: relative to the workspace when inside it."""
        try:
            return str(Path(path).resolve().relative_to(self.root))
        except ValueError:
            return str(path)
