"""The workspace: one folder holding a run's outputs, laid out as in the system guide.

No code writes outside the workspace it was given; every path comes from here.

A run leaves its layout where readers find it: ``Workspace.create`` writes the effective
coordination config (the ``workspace:`` layout, the stage plan, the gates and their thresholds)
to ``meta/workspace.json``, a fixed place that is mirrored with the rest. Readers that are given
only a folder — ``cvagents status``, the dashboards, ``rebuild-reports`` — call
``Workspace.open(folder)``, which reads it back (a workspace written before the descriptor
existed opens with the defaults), so they see the run's paths, stages and thresholds.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from pydantic import ValidationError

from cvagents.config import CoordinationConfig, WorkspaceLayout, default_project_root, packaged_defaults
from cvagents.durability.atomic import atomic_write_text
from cvagents.errors import CVAgentsError

HANDOFF_DOCS = ("README.md", "pending_actions_TEMPLATE.json")
#: the folder, beside the layout's folders, that describes the workspace (mirrored with them)
META_DIR = "meta"
DESCRIPTOR = "workspace.json"
DESCRIPTOR_FORMAT = 1


class WorkspaceError(CVAgentsError, ValueError):
    """A workspace's descriptor (``meta/workspace.json``) cannot be read (a ``ValueError`` too,
    as the CLI reports those in one line)."""


class Workspace:
    def __init__(self, root: Path | str, config: CoordinationConfig | None = None):
        self.root = Path(root).resolve()
        self.config = config if config is not None else CoordinationConfig()

    @classmethod
    def from_config(cls, root: Path | str, config: CoordinationConfig) -> Workspace:
        return cls(root, config)

    @classmethod
    def open(cls, root: Path | str, default: CoordinationConfig | None = None) -> Workspace:
        """The workspace (or a mirror of one) at ``root``, with the config its run left in
        ``meta/workspace.json``; without one (written before it existed), ``default`` or the
        built-in defaults."""
        ws = cls(root, default)
        try:
            raw = ws.descriptor_file.read_bytes()
        except FileNotFoundError:
            return ws
        try:
            d = json.loads(raw)
            if d.get("format") != DESCRIPTOR_FORMAT:
                raise ValueError(f"format {d.get('format')!r}, expected {DESCRIPTOR_FORMAT}")
            ws.config = CoordinationConfig.model_validate(d["coordination"])
        except (ValueError, KeyError, TypeError, AttributeError, ValidationError) as e:
            raise WorkspaceError(f"{ws.descriptor_file}: not a workspace descriptor this version reads ({e})") from e
        return ws

    # ------------------------------------------------------------------ the layout
    @property
    def layout(self) -> WorkspaceLayout:
        return self.config.workspace

    @property
    def stages(self) -> tuple[str, ...]:
        return tuple(self.config.rollout.stages)

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

    # ------------------------------------------------------------------ fixed places
    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def rollout_state_file(self) -> Path:
        """The state snapshot the agents see, for the monitors."""
        return self.reports_dir / "rollout_state.json"

    @property
    def costs_file(self) -> Path:
        return self.reports_dir / "costs.json"

    @property
    def rollout_dir(self) -> Path:
        """The rollout controller's reports: decisions, its last review, approvals."""
        return self.reports_dir / "rollout"

    @property
    def decisions_file(self) -> Path:
        return self.rollout_dir / "decisions.jsonl"

    @property
    def controller_file(self) -> Path:
        return self.rollout_dir / "controller.json"

    @property
    def approvals_dir(self) -> Path:
        return self.rollout_dir / "approvals"

    @property
    def models_dir(self) -> Path:
        """The model registry: every candidate submitted (``cvagents.models.registry``)."""
        return self.reports_dir / "models"

    @property
    def meta_dir(self) -> Path:
        return self.root / META_DIR

    @property
    def descriptor_file(self) -> Path:
        return self.meta_dir / DESCRIPTOR

    def essential_files(self) -> list[Path]:
        """The guide's quick-status trio."""
        return [self.model_file, self.metrics_file, self.validation_dir / "dataset_info.json"]

    # ------------------------------------------------------------------ making it
    def create(self, project_root: Path | None = None) -> Workspace:
        """Make the layout, leave its descriptor, and ship the handoff README and template
        (never overwriting)."""
        for d in (
            self.planning_dir,
            self.execution_dir,
            self.handoff_dir,
            self.metrics_file.parent,
            self.research_dir,
            self.sessions_dir,
            self.log_file.parent,
        ):
            d.mkdir(parents=True, exist_ok=True)
        for stage in self.stages:
            self.stage_dir(stage).mkdir(parents=True, exist_ok=True)
        self.write_descriptor()
        self.ship_handoff_docs(project_root)
        return self

    def ship_handoff_docs(self, project_root: Path | None = None) -> None:
        """The handoff folder's README and template (never overwriting): the project's own
        ``reports/handoff/`` copy when it has one, else the one shipped in the package."""
        folders = [Path(project_root or default_project_root()), packaged_defaults()]
        for name in HANDOFF_DOCS:
            dst = self.handoff_dir / name
            if dst.exists():
                continue
            src = next(
                (f / "reports" / "handoff" / name for f in folders if (f / "reports" / "handoff" / name).is_file()),
                None,
            )
            if src is None:
                logging.getLogger(__name__).warning("handoff doc %s not found in %s", name, folders[-1])
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)

    def write_descriptor(self) -> None:
        """``meta/workspace.json``: the effective coordination config (rewritten only when it
        changed, so the mirror copies it again only then)."""
        doc = {"format": DESCRIPTOR_FORMAT, "coordination": self.config.model_dump(mode="json")}
        text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
        try:
            if self.descriptor_file.read_text(encoding="utf-8") == text:
                return
        except FileNotFoundError:
            pass
        atomic_write_text(self.descriptor_file, text)

    def rel(self, path: Path) -> str:
        """A path as the reports show it: relative to the workspace when inside it."""
        try:
            return str(Path(path).resolve().relative_to(self.root))
        except ValueError:
            return str(path)
