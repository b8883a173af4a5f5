"""The rollout controller: the gates applied to the workspace, which no agent can talk its way past.

Agents propose; the controller decides (the gates themselves are pure functions in
``cvagents.rollout.gates``).

- A model enters a stage only from the stage before it, only when every gate of that stage
  passed for the very artifact (same sha256), after a passed rollback drill of it there, and —
  for stages under ``require_approval`` — after a human approved that artifact.
  (``assess_deploy``; the deploy tool refuses anything else and records why.)
- After every executive heartbeat the controller reviews every deployed stage
  (``after_heartbeat``): a failed gate, or an artifact whose checksum no longer matches, rolls
  the stage back to its last good version (a pointer swap); inconclusive pauses the stage, with
  the reason in the state snapshot. Every decision is journaled through the run's ``record``
  callback and then written to the reports (``cvagents.rollout.decisions``; an automatic
  rollback also adds its line to the deployments log, ``cvagents.rollout.deployments_log``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from cvagents import tracing
from cvagents.config import CoordinationConfig
from cvagents.durability.atomic import atomic_write_text, read_json
from cvagents.durability.hashing import sha256_file
from cvagents.models import registry
from cvagents.rollout import approval, decisions, deployment, deployments_log, metrics_store
from cvagents.rollout.decisions import Recorder
from cvagents.rollout.gates import FAIL, PASS, StageReview, next_stage, previous_stage, review_stage
from cvagents.workspace import Workspace

ARTIFACT_SUFFIXES = (".pth", ".pt")

log = logging.getLogger("cvagents.rollout.controller")


class StageStatus(StrEnum):
    """A stage as the controller's last review left it (``reports/rollout/controller.json``)."""

    EMPTY = "empty"  # nothing is deployed to it
    PASSED = "passed"  # every gate passed for the version live in it
    PAUSED = "paused"  # a gate is inconclusive: the rollout waits for more evidence there
    AWAITING_APPROVAL = "awaiting_approval"  # every gate passed; the next stage needs a human's approval
    ROLLED_BACK = "rolled_back"  # the live version failed a gate, its health check, or was rejected: rolled back


# ------------------------------------------------------------------ rejected versions


def rejected_shas(ws: Workspace, cfg: CoordinationConfig, metrics: dict[str, Any]) -> dict[str, str]:
    """Artifacts that failed a gate at some stage (from the evidence, and from the controller's
    rollbacks), with why: never deployed again."""
    out: dict[str, str] = {}
    for stage, by_sha in (metrics.get("evidence") or {}).items():
        if stage not in cfg.rollout.stages:
            continue
        for sha in by_sha:
            r = review_stage(metrics, stage, sha, cfg)
            if r.verdict == FAIL:
                out.setdefault(sha, f"{r.reason} at {stage}")
    for d in decisions.read(ws):
        if d.get("kind") == "rollback" and d.get("cause") == "gate" and d.get("sha256"):
            out.setdefault(d["sha256"], f"{d.get('reason')} at {d.get('stage')}")
    return out


# ---------------------------------------------------------------- deployment decisions


@dataclass
class DeployAssessment:
    allowed: bool
    reason: str
    review: StageReview | None = None  # the previous stage's gates, for a promotion
    previous_stage: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def in_artifact_folders(ws: Workspace, cfg: CoordinationConfig, path: Path, *, deployed: bool = True) -> bool:
    """Is ``path`` (symlinks resolved) under ``rollout.artifact_folders`` (or, with ``deployed``,
    under the deployment folder)?"""
    p = Path(path).resolve()
    folders = [(ws.root / f).resolve() for f in cfg.rollout.artifact_folders]
    if deployed:
        folders.append(ws.deployment_dir.resolve())
    return any(f in p.parents for f in folders)


def artifact_known(ws: Workspace, cfg: CoordinationConfig, path: Path) -> str | None:
    """Why ``path`` is not an artifact the first stage may take, or None: a submitted candidate
    (``cvagents submit``: any file its adapter loads) or a torch checkpoint, under the artifact
    folders."""
    p = Path(path).resolve()
    if p.suffix not in ARTIFACT_SUFFIXES and not (p.is_file() and registry.by_sha(ws, sha256_file(p))):
        return (
            f"{ws.rel(p)} is neither a submitted candidate (cvagents submit) nor a torch checkpoint"
            f" ({', '.join(ARTIFACT_SUFFIXES)})"
        )
    if not in_artifact_folders(ws, cfg, p):
        return f"{ws.rel(p)} is not under the artifact folders ({', '.join(cfg.rollout.artifact_folders)}); unknown artifact"
    return None


def assess_deploy(
    ws: Workspace, cfg: CoordinationConfig, metrics: dict[str, Any], stage: str, sha: str, source: Path | None = None
) -> DeployAssessment:
    """May artifact ``sha`` be deployed to ``stage``? Every refusal says why."""
    if stage not in cfg.rollout.stages:
        return DeployAssessment(False, f"unknown stage {stage!r}; stages are {', '.join(cfg.rollout.stages)}")
    rejected = rejected_shas(ws, cfg, metrics)
    why_rejected = f"artifact sha256 {sha[:12]} was rejected ({rejected.get(sha)}); it is never deployed again"
    prev = previous_stage(cfg, stage)
    if prev is None:
        if sha in rejected:
            return DeployAssessment(False, why_rejected)
        if source is not None:
            why = artifact_known(ws, cfg, source)
            if why:
                return DeployAssessment(False, why)
        return DeployAssessment(True, f"{stage} is the first stage; no gate precedes it")
    live = deployment.live(ws.stage_dir(prev))
    if not live:
        return DeployAssessment(
            False, f"stage {stage} would skip {prev}: nothing is deployed to {prev}", previous_stage=prev
        )
    if live["sha256"] != sha:
        return DeployAssessment(
            False,
            f"the artifact (sha256 {sha[:12]}) is not the version live in {prev} ({live['sha256'][:12]}); deploy it to {prev} first",
            previous_stage=prev,
        )
    review = review_stage(metrics, prev, sha, cfg, live["version"])
    if review.verdict != PASS:
        bad = ", ".join(f"{r.gate} {r.status}" for r in review.gates if r.status != PASS)
        return DeployAssessment(
            False, f"gates of {prev} are {review.verdict.upper()} ({bad}); promotion to {stage} refused", review, prev
        )
    if sha in rejected:
        return DeployAssessment(False, why_rejected, review, prev)
    if cfg.rollout.drill_before_promotion:
        drill = (metrics_store.evidence(metrics, prev, sha) or {}).get("drill")
        if not drill or not drill.get("passed"):
            return DeployAssessment(
                False,
                f"no passed rollback drill of {live['version']} in {prev}; drill before promotion to {stage}",
                review,
                prev,
            )
    if approval.awaiting(ws, cfg, stage, sha):
        return DeployAssessment(
            False,
            f"awaiting approval: a human must approve {live['version']} (sha256 {sha[:12]}) for {stage} "
            f"(cvagents approve --workspace {ws.root} --stage {stage})",
            review,
            prev,
            {"awaiting_approval": True},
        )
    return DeployAssessment(True, f"every gate of {prev} passed for {live['version']}", review, prev)


# ------------------------------------------------------------------------ the controller


def controller_file(ws: Workspace) -> Path:
    return ws.controller_file


def write_state(ws: Workspace, state: dict[str, Any]) -> None:
    """``controller.json``, in the journal's form (keys sorted): the checkpoint that copies it
    gives the same bytes back to ``rebuild-reports``."""
    atomic_write_text(controller_file(ws), json.dumps(state, indent=2, ensure_ascii=False, sort_keys=True) + "\n")


def last_good_version(stage_dir: Path, live: dict[str, Any], rejected: dict[str, str]) -> dict[str, Any] | None:
    """The newest earlier version in the chain that is healthy and not rejected."""
    by_name = {v["version"]: v for v in deployment.versions(stage_dir)}
    seen, name = set(), live.get("previous_version")
    while name and name not in seen:
        seen.add(name)
        v = by_name.get(name)
        if not v:
            break
        art = Path(stage_dir) / "versions" / name / v["artifact"]
        if v["sha256"] not in rejected and art.is_file() and sha256_file(art) == v["sha256"]:
            return v
        name = v.get("previous_version")
    return None


class Controller:
    """One review of every stage; ``record`` journals each decision before it is written."""

    def __init__(
        self,
        ws: Workspace,
        cfg: CoordinationConfig,
        record: Recorder | None = None,
        settings_hash: str | None = None,
    ):
        self.ws, self.cfg, self.record, self.settings_hash = ws, cfg, record, settings_hash

    def _decide(self, kind: str, now: str, **kw: Any) -> dict:
        return decisions.append(
            self.ws, self.cfg, kind, time=now, settings_hash=self.settings_hash, record=self.record, **kw
        )

    def _rollback(
        self,
        stage: str,
        live: dict,
        now: str,
        *,
        cause: str,
        reason: str,
        rejected: dict[str, str],
        review: StageReview | None,
    ) -> dict:
        d = self.ws.stage_dir(stage)
        target = last_good_version(d, live, rejected)
        to = target["version"] if target else None
        deployment.point_to(
            d,
            to,
            action_id=f"controller:{stage}:{live['version']}",
            time=now,
            reason=f"automatic rollback of {live['version']}: {reason}",
        )
        text = f"rolled back {stage} from {live['version']} to {to or 'nothing (stage emptied)'}: {reason}"
        log.info("🚦 Rollout controller: %s", text)
        made = self._decide(
            "rollback",
            now,
            stage=stage,
            outcome="rolled_back",
            reason=text,
            sha256=live["sha256"],
            version=live["version"],
            gates=[g.as_dict() for g in review.gates] if review else [],
            evidence=review.evidence if review else {},
            cause=cause,
            rolled_back_to={"version": to, "sha256": target["sha256"] if target else None},
        )
        # the guide's deployments log, rendered from the journaled decision
        deployments_log.append(
            self.ws.execution_dir, deployments_log.decision_time(made), deployments_log.controller_lines(made)
        )
        return made

    def _hold(self, stage: str, live: dict, rev: StageReview, now: str, seen: set[str | None]) -> tuple[dict, dict]:
        """A stage that keeps its version: passed, paused or awaiting approval. The decision
        (None when the same one was recorded last) and the stage's entry in controller.json."""
        nxt = next_stage(self.cfg, stage)
        waiting = rev.verdict == PASS and nxt is not None and approval.awaiting(self.ws, self.cfg, nxt, live["sha256"])
        status = StageStatus.PASSED if rev.verdict == PASS else StageStatus.PAUSED
        if waiting:
            status = StageStatus.AWAITING_APPROVAL
        sig = hashlib.sha256(
            "|".join([live["sha256"], status] + [f"{g.gate}={g.status}" for g in rev.gates]).encode()
        ).hexdigest()[:16]
        entry = {
            "version": live["version"],
            "sha256": live["sha256"],
            "status": status,
            "verdict": rev.verdict,
            "reason": rev.reason,
            "evidence": rev.evidence,
            "signature": sig,
        }
        if sig in seen:
            return {}, entry
        reason = rev.reason
        if status == StageStatus.AWAITING_APPROVAL:
            reason = f"every gate of {stage} passed; {nxt} needs a human approval (cvagents approve --workspace {self.ws.root} --stage {nxt})"
        elif status == StageStatus.PAUSED:
            reason = f"rollout paused at {stage}: {rev.reason}"
        kind = {
            StageStatus.PASSED: "gates_passed",
            StageStatus.PAUSED: "paused",
            StageStatus.AWAITING_APPROVAL: "awaiting_approval",
        }[status]
        made = self._decide(
            kind,
            now,
            stage=stage,
            outcome=status,
            reason=reason,
            sha256=live["sha256"],
            version=live["version"],
            gates=[g.as_dict() for g in rev.gates],
            evidence=rev.evidence,
            next_stage=nxt,
            signature=sig,
        )
        log.info(
            "🚦 Rollout controller: %s",
            reason
            if status != StageStatus.PASSED
            else f"every gate of {stage} passed for {live['version']}" + (f"; {nxt} may follow" if nxt else ""),
        )
        return made, entry

    def _submissions(self, now: str, seen: set[str]) -> list[dict]:
        """A decision for each candidate submitted (``cvagents submit``) since the last review:
        the submission enters the journal like an approval does."""
        made = []
        for e in registry.entries(self.ws):
            key = f"{e['name']}:{e['sha256']}"
            if key in seen:
                continue
            seen.add(key)
            made.append(
                self._decide(
                    "submitted",
                    now,
                    stage=None,
                    outcome="submitted",
                    sha256=e["sha256"],
                    name=e["name"],
                    path=e.get("path"),
                    adapter=e.get("adapter"),
                    candidate=e,
                    reason=f"candidate {e['name']} submitted by {e.get('submitted_by')} at {e.get('time')}",
                )
            )
            log.info("🚦 Rollout controller: candidate %s (sha256 %s) submitted", e["name"], e["sha256"][:12])
        return made

    def review(self, now: str) -> list[dict]:
        ws, cfg = self.ws, self.cfg
        metrics = metrics_store.load(ws.metrics_file)
        state = read_json(controller_file(ws)) or {}
        seen: dict[str, Any] = state.get("stages") or {}
        approvals_seen = set(state.get("approvals_seen") or [])
        submissions_seen = set(state.get("submissions_seen") or [])
        # decisions.jsonl is written before controller.json: after a crash between the two, the
        # decisions already written must not be made again.
        last_signature: dict[str, str | None] = {}
        for rec in decisions.read(ws):
            if rec.get("stage"):
                last_signature[rec["stage"]] = rec.get("signature")
            if rec.get("kind") == "approved":
                approvals_seen.add(f"{rec.get('stage')}:{rec.get('sha256')}")
            elif rec.get("kind") == "submitted":
                submissions_seen.add(f"{rec.get('name')}:{rec.get('sha256')}")
        made: list[dict] = []
        rejected = rejected_shas(ws, cfg, metrics)
        lives: dict[str, dict] = {}
        reviews: dict[str, StageReview] = {}
        for stage in cfg.rollout.stages:
            d = ws.stage_dir(stage)
            if d.is_dir():
                deployment.recover(d)  # a drill cut short by a crash
            live = deployment.live(d)
            if live:
                lives[stage] = live
                reviews[stage] = review_stage(metrics, stage, live["sha256"], cfg, live["version"])
                tracing.event("cvagents.gate_verdict", reviews[stage].as_event())
                if reviews[stage].verdict == FAIL:
                    rejected.setdefault(live["sha256"], f"{reviews[stage].reason} at {stage}")
        out_stages: dict[str, Any] = {}
        for stage in cfg.rollout.stages:
            live = lives.get(stage)
            if not live:
                out_stages[stage] = {"version": None, "status": StageStatus.EMPTY}
                continue
            d = ws.stage_dir(stage)
            ok, why = deployment.verify(d)
            rev = reviews[stage]
            if ok and rev.verdict != FAIL and live["sha256"] not in rejected:
                decided, out_stages[stage] = self._hold(
                    stage, live, rev, now, {seen.get(stage, {}).get("signature"), last_signature.get(stage)}
                )
                if decided:
                    made.append(decided)
                continue
            if not ok:
                cause, reason, review = "health", f"live artifact unhealthy ({why})", None
            elif rev.verdict == FAIL:
                cause, reason, review = "gate", rev.reason, rev
            else:
                cause, reason, review = (
                    "rejected",
                    f"this version was rejected elsewhere: {rejected[live['sha256']]}",
                    rev,
                )
            made.append(self._rollback(stage, live, now, cause=cause, reason=reason, rejected=rejected, review=review))
            out_stages[stage] = {
                "version": (deployment.live(d) or {}).get("version"),
                "status": StageStatus.ROLLED_BACK,
                "rolled_back": live["version"],
            }
        for a in approval.all_approvals(ws):
            key = f"{a.get('stage')}:{a.get('sha256')}"
            if key not in approvals_seen:
                approvals_seen.add(key)
                made.append(
                    self._decide(
                        "approved",
                        now,
                        stage=a.get("stage"),
                        outcome="approved",
                        sha256=a.get("sha256"),
                        version=a.get("version"),
                        reason=f"approved by {a.get('approved_by')} at {a.get('time')}"
                        + (f": {a['note']}" if a.get("note") else ""),
                        approval=a,
                    )
                )
        made += self._submissions(now, submissions_seen)
        write_state(
            ws,
            {
                "updated": now,
                "stages": out_stages,
                "approvals_seen": sorted(approvals_seen),
                "submissions_seen": sorted(submissions_seen),
            },
        )
        return made


def after_heartbeat(
    ws: Workspace,
    cfg: CoordinationConfig,
    now: str,
    *,
    record: Recorder | None = None,
    settings_hash: str | None = None,
) -> list[dict]:
    """The controller's review after an executive heartbeat; each decision is journaled through
    ``record`` before it is written. Never raises: a bug here is logged, and the run goes on
    (the deploy tool still refuses whatever the gates refuse). Then the MLflow champion alias
    follows production (``champion_alias``; its decisions are returned too)."""
    try:
        made = Controller(ws, cfg, record, settings_hash).review(now)
    except Exception:  # noqa: BLE001
        log.exception("rollout controller review failed")
        return []
    from cvagents.rollout import champion_alias  # imports the model registry: only once a run reviews

    aliased = champion_alias.reconcile(ws, cfg, record, now=now, settings_hash=settings_hash)
    return made + (aliased or {}).get("decisions", [])
