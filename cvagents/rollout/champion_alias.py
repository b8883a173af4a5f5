"""The MLflow champion alias follows production: after each controller review, the registered
model version serving production holds ``serving.champion_alias`` in its MLflow registry.

- The champion is the version live in the last stage. When its candidate came from MLflow
  (``source.kind == "mlflow"``) and the alias of that registered model is not on its version,
  the alias is set (MLflow moves it). A promotion sets it; a rollback of production to an earlier
  MLflow version moves it back.
- When production no longer serves a version of a registered model whose alias this run set, the
  alias is deleted there — unless someone moved it meanwhile, then it is left alone.
- What was done is a rollout decision ``kind: "alias"`` (journaled through ``record`` first, as
  every decision). The last such decision per (registry, model, alias) is the state this module
  compares with: when it already says what production wants, the registry is not contacted at
  all, so a run does not ask the registry every heartbeat, and does not fight a human who moves
  the alias by hand while the champion stays the same.
- Never raises into the run: an unreachable registry is a warning and an ``errors`` entry in the
  result; the next review tries again (MLflow's own HTTP retries apply:
  ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` and ``MLFLOW_HTTP_REQUEST_TIMEOUT`` bound them).

The decisions carry ``stage: None`` (the alias belongs to the registry, not a stage), so the
controller's per-stage bookkeeping of decisions does not see them.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from cvagents.config import CoordinationConfig
from cvagents.models import mlflow_source, registry
from cvagents.rollout import decisions, deployment
from cvagents.rollout.decisions import Recorder
from cvagents.workspace import Workspace

KIND = "alias"

log = logging.getLogger("cvagents.rollout.champion_alias")

Key = tuple[str, str, str]  # (tracking_uri as recorded, registered model name, alias)


def _mlflow_source(entry: dict[str, Any] | None) -> dict[str, Any] | None:
    src = (entry or {}).get("source") or {}
    return src if src.get("kind") == "mlflow" and src.get("name") and src.get("version") else None


def _last_state(ws: Workspace) -> dict[Key, str | None]:
    """The model version each alias was last left on by this workspace's decisions."""
    out: dict[Key, str | None] = {}
    for d in decisions.read(ws):
        if d.get("kind") == KIND and d.get("model"):
            out[(d.get("tracking_uri") or "", d["model"], d.get("alias") or "")] = d.get("model_version")
    return out


def reconcile(
    ws: Workspace,
    cfg: CoordinationConfig,
    record: Recorder | None = None,
    *,
    now: str | None = None,
    settings_hash: str | None = None,
) -> dict[str, Any] | None:
    """Bring the champion alias in line with production. None when nothing needed doing; else
    ``{"decisions": [...], "errors": [...]}`` (an error is one line naming the model)."""
    try:
        return _reconcile(ws, cfg, record, now or datetime.now(UTC).isoformat(), settings_hash)
    except Exception as e:  # noqa: BLE001 — never into the run
        log.warning("champion alias not reconciled: %s", e, exc_info=True)
        return {"decisions": [], "errors": [f"champion alias: {type(e).__name__}: {e}"]}


def _reconcile(
    ws: Workspace, cfg: CoordinationConfig, record: Recorder | None, now: str, settings_hash: str | None
) -> dict[str, Any] | None:
    from_mlflow = [(e, s) for e in registry.entries(ws) if (s := _mlflow_source(e))]
    if not from_mlflow:
        return None
    alias = cfg.serving.champion_alias
    live = deployment.live(ws.stage_dir(list(cfg.rollout.stages)[-1]))
    champion = registry.by_sha(ws, live["sha256"]) if live else None
    champ_src = _mlflow_source(champion)
    last = _last_state(ws)
    made: list[dict[str, Any]] = []
    errors: list[str] = []
    models: dict[Key, list[dict[str, Any]]] = {}
    for e, s in from_mlflow:
        models.setdefault((s.get("tracking_uri") or "", s["name"], alias), []).append(e)
    for key, entries in models.items():
        where, name, _ = key
        want = str(champ_src["version"]) if champ_src and champion in entries else None
        if last.get(key) == want:
            continue  # the journal already says what production wants: nothing to ask the registry
        try:
            d = _apply(ws, cfg, key, want, last.get(key), entries, live, record, now, settings_hash)
        except Exception as e:  # noqa: BLE001 — an unreachable registry, MLflow not installed
            text = f"models:/{name}@{alias}: alias not reconciled with the MLflow registry at {where}: {mlflow_source.one_line(e)}"
            log.warning("%s", text)
            errors.append(text)
            continue
        if d:
            made.append(d)
    return {"decisions": made, "errors": errors} if made or errors else None


def _apply(
    ws: Workspace,
    cfg: CoordinationConfig,
    key: Key,
    want: str | None,
    was: str | None,
    entries: list[dict[str, Any]],
    live: dict[str, Any] | None,
    record: Recorder | None,
    now: str,
    settings_hash: str | None,
) -> dict[str, Any] | None:
    where, name, alias = key
    reg = mlflow_source.tracking_uri(cfg)
    if not reg:
        raise mlflow_source.MlflowSourceError(
            "no MLflow registry configured (set serving.mlflow_tracking_uri or MLFLOW_TRACKING_URI)"
        )
    if mlflow_source.public_uri(reg) != where:
        raise mlflow_source.MlflowSourceError(
            f"the candidate came from {where}, the configured registry is {mlflow_source.public_uri(reg)}"
        )
    current = mlflow_source.aliased_version(name, alias, reg)
    if want is not None:
        if current == want:
            outcome, text = "already_set", f"alias {alias!r} of MLflow model {name!r} is on version {want} already"
        else:
            mlflow_source.set_alias({"name": name, "version": want}, alias, reg)
            outcome = "set"
            text = f"alias {alias!r} of MLflow model {name!r} set on version {want}, the version serving production" + (
                f" (was on version {current})" if current else ""
            )
        entry = next(e for e in entries if str(e["source"]["version"]) == want)
        sha, version = entry["sha256"], (live or {}).get("version")
    else:
        if current == was and current is not None:
            mlflow_source.delete_alias(name, alias, reg)
            outcome, text = "removed", f"alias {alias!r} of MLflow model {name!r} removed from version {was}"
        else:
            outcome = "left_alone"
            text = f"alias {alias!r} of MLflow model {name!r} was moved to {current or 'no version'} outside this run; left alone"
        text += ": production no longer serves a version of it"
        gone = next((e for e in entries if str(e["source"]["version"]) == was), None)
        sha, version = (gone or {}).get("sha256"), None
    log.info("🏷️ MLflow: %s", text)
    return decisions.append(
        ws,
        cfg,
        KIND,
        stage=None,
        outcome=outcome,
        reason=text,
        time=now,
        sha256=sha,
        version=version,
        settings_hash=settings_hash,
        record=record,
        alias=alias,
        model=name,
        model_version=want,
        previous_model_version=current,
        tracking_uri=where,
    )
