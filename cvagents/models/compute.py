"""The compute engine seam: where the per-query work of evaluation and traffic replay runs.

A *job* (``EvalJob``, ``ReplayJob``) holds its items — queries, replayed requests — and answers
one *shard* of them, a ``(start, stop)`` range, with the models a *worker* opened once through
their adapters. The shards depend on ``compute.shard_size`` alone, never on the engine, so every
model sees the same batches whatever runs them; the results come back in shard order and the
caller merges them one way. Two engines:

- ``LocalEngine``: one worker, this process (the default; Ray is never imported);
- ``RayEngine`` (``cvagents.models.ray_engine``, the ``ray`` extra): one Ray actor per worker,
  each loading the models once and answering shards as they come; a worker that dies has its
  shard retried on its restarted self.

A worker gets the adapter's factory spec and the artifact and validation-set *paths*: the
workers must be able to import the adapter and read those paths.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cvagents.config.coordination import Compute
from cvagents.errors import CVAgentsError
from cvagents.models.adapter import AdapterError, ModelAdapter, close_adapter, open_adapter
from cvagents.models.progress import progress

DEFAULT_SHARD_SIZE = Compute().shard_size


class ComputeError(CVAgentsError):
    """The compute engine cannot run the job: Ray missing, a cluster that cannot be reached, a
    worker lost beyond its retries."""


@dataclass(frozen=True)
class ModelRef:
    """A model as a worker opens it: ``adapter`` (``package.module:factory``) over ``artifact``
    and ``validation_set``, absolute paths the workers can read."""

    adapter: str
    artifact: str
    validation_set: str

    @classmethod
    def of(cls, adapter: str, artifact: str | Path, validation_set: str | Path) -> ModelRef:
        return cls(adapter, str(Path(artifact).resolve()), str(Path(validation_set).resolve()))


@dataclass
class Loaded:
    """The models one worker opened, by role (``candidate``, ``champion``, ``production``),
    with the error of each one that failed to load."""

    adapters: dict[str, ModelAdapter] = field(default_factory=dict)
    specs: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    owned: bool = False

    @classmethod
    def open(cls, models: Mapping[str, ModelRef]) -> Loaded:
        loaded = cls(owned=True)
        for role, ref in models.items():
            loaded.specs[role] = ref.adapter
            try:
                loaded.adapters[role] = open_adapter(ref.adapter, ref.artifact, ref.validation_set)
            except AdapterError as e:
                loaded.errors[role] = str(e)
        return loaded

    def report(self) -> LoadReport:
        infos = {r: getattr(a, "info", None) for r, a in self.adapters.items()}
        return LoadReport(dict(self.errors), {r: dict(i) for r, i in infos.items() if isinstance(i, dict)})

    def close(self) -> None:
        if self.owned:
            for a in self.adapters.values():
                close_adapter(a)


@dataclass
class LoadReport:
    """What opening the models gave: errors and the adapters' ``info`` dicts, by role."""

    errors: dict[str, str]
    info: dict[str, dict[str, Any]]


class Job(Protocol):
    #: roles whose failure to load fails the job before any shard runs
    required: tuple[str, ...]

    def warm(self, loaded: Loaded) -> None: ...

    def __call__(self, loaded: Loaded, shard: tuple[int, int]) -> Any: ...


@dataclass
class Outcome:
    """A job's shard results in shard order, and what loading its models gave."""

    loaded: LoadReport
    results: list[Any]


class Engine(Protocol):
    shard_size: int

    def connect(self) -> None:
        """Reach the compute (a ``ComputeError`` if it cannot), before the step starts."""

    def run(self, models: Mapping[str, ModelRef], job: Job, n: int, desc: str) -> Outcome:
        """Open ``models`` on the workers, then answer the ``n`` items' shards."""
        ...


def shards(n: int, size: int) -> list[tuple[int, int]]:
    """``[0, n)`` in consecutive ranges of ``size`` (the last shorter)."""
    return [(lo, min(n, lo + size)) for lo in range(0, n, size)]


def check_required(job: Job, report: LoadReport) -> None:
    """An ``AdapterError`` (the adapter's own message) if a required model failed to load."""
    for role in job.required:
        if role in report.errors:
            raise AdapterError(report.errors[role])


def run_loaded(loaded: Loaded, job: Job, n: int, shard_size: int, desc: str) -> list[Any]:
    """The job on models open in this process, shard by shard, with a shards-done bar."""
    job.warm(loaded)
    return [job(loaded, s) for s in progress(shards(n, shard_size), desc, unit="shard")]


class LocalEngine:
    """Every shard in this process, one after another."""

    def __init__(self, shard_size: int = DEFAULT_SHARD_SIZE):
        self.shard_size = shard_size

    def connect(self) -> None:
        pass

    def run(self, models: Mapping[str, ModelRef], job: Job, n: int, desc: str) -> Outcome:
        loaded = Loaded.open(models)
        try:
            report = loaded.report()
            check_required(job, report)
            return Outcome(report, run_loaded(loaded, job, n, self.shard_size, desc))
        finally:
            loaded.close()


def engine_for(cfg: Compute) -> Engine:
    """The engine ``compute.engine`` names (Ray imported only for ``ray``)."""
    if cfg.engine == "local":
        return LocalEngine(cfg.shard_size)
    try:
        from cvagents.models.ray_engine import RayEngine
    except ImportError as e:
        raise ComputeError(
            f"compute.engine: ray needs Ray installed (pip install cvagents[ray]): {type(e).__name__}: {e}"
        ) from None
    return RayEngine(cfg)


def completed(items: Iterator[Any], desc: str, total: int) -> list[Any]:
    """Drain ``items`` (one per finished shard) behind a shards-done bar."""
    return list(progress(items, desc, total=total, unit="shard"))
