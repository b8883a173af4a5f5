"""The Ray engine: a job's shards answered by Ray actors, each loading the models once.

Imported only when ``compute.engine`` is ``ray`` (the ``ray`` extra). Each worker is an actor
that opens the job's models through their adapters (the factory spec and the artifact and
validation-set paths reach it: the worker must import the adapter's package and read the
paths), warms them up on its first shard, and answers shards one at a time as the driver hands
them out. A worker that dies (its process killed, the node lost) is restarted by Ray, loads the
models again, and the shard it held is retried (``max_restarts`` / ``max_task_retries``); past
``RETRIES`` the job fails with a ``ComputeError``. An adapter's own error comes back as itself.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator, Mapping
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from cvagents.config.coordination import Compute
from cvagents.errors import CVAgentsError
from cvagents.models.compute import (
    ComputeError,
    Job,
    Loaded,
    LoadReport,
    ModelRef,
    Outcome,
    check_required,
    completed,
    shards,
)

#: times a dead worker is restarted (and its shard retried) before the job fails
RETRIES = 3
#: seconds to wait for a ray:// address to accept a connection before the step starts
CONNECT_TIMEOUT_S = 5.0


class _Worker:
    """One Ray actor: the job's models, opened once."""

    def __init__(self, models: Mapping[str, ModelRef], job: Job):
        self.loaded, self.job, self.warm = Loaded.open(models), job, False

    def report(self) -> LoadReport:
        return self.loaded.report()

    def shard(self, bounds: tuple[int, int]) -> Any:
        if not self.warm:
            self.job.warm(self.loaded)
            self.warm = True
        return self.job(self.loaded, bounds)


class RayEngine:
    """Shards over ``compute.workers`` Ray actors of ``num_cpus``/``num_gpus`` each."""

    def __init__(self, cfg: Compute):
        self.cfg, self.shard_size = cfg, cfg.shard_size

    @property
    def where(self) -> str:
        return f"compute.address {self.cfg.address}" if self.cfg.address else "compute.engine ray (a local Ray)"

    def connect(self) -> None:
        """Reach the cluster (or start a local Ray) now, so an unreachable one fails the step
        before it starts, in one line."""
        address = self.cfg.address
        if address.startswith("ray://"):
            host, _, port = address.removeprefix("ray://").rpartition(":")
            try:
                socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
            except OSError as e:
                raise ComputeError(f"{self.where}: cannot reach the Ray cluster ({e.strerror or e})") from None
        if ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"address": address} if address else {"include_dashboard": False}
        try:
            ray.init(**kwargs, logging_level=logging.WARNING, log_to_driver=False)
        except Exception as e:  # noqa: BLE001 - ConnectionError, RuntimeError, a timeout: all "not reachable"
            first = (str(e).strip().splitlines() or [""])[0][:200]
            raise ComputeError(f"{self.where}: cannot reach the Ray cluster ({type(e).__name__}: {first})") from None

    def workers(self, n_shards: int) -> int:
        wanted = self.cfg.workers or max(1, int(ray.cluster_resources().get("CPU", 1) // self.cfg.num_cpus))
        return max(1, min(wanted, n_shards))

    def run(self, models: Mapping[str, ModelRef], job: Job, n: int, desc: str) -> Outcome:
        self.connect()
        bounds = shards(n, self.shard_size)
        actor = ray.remote(_Worker).options(
            num_cpus=self.cfg.num_cpus,
            num_gpus=self.cfg.num_gpus,
            max_restarts=RETRIES,
            max_task_retries=RETRIES,
        )
        job_ref = ray.put(job)  # held until the end: a restarted worker reads the job from it again
        actors: list[Any] = [actor.remote(dict(models), job_ref) for _ in range(self.workers(len(bounds)))]
        try:
            report = self._get(actors[0].report.remote(), "loading the models")
            check_required(job, report)
            results: list[Any] = [None] * len(bounds)
            completed(self._answers(actors, bounds, results), desc, len(bounds))
            return Outcome(report, results)
        finally:
            for a in actors:
                ray.kill(a, no_restart=True)

    def _answers(self, actors: list[Any], bounds: list[tuple[int, int]], results: list[Any]) -> Iterator[int]:
        """Hand each idle worker the next shard; yield each shard's index as it finishes."""
        todo = list(range(len(bounds)))[::-1]
        pending: dict[Any, tuple[int, Any]] = {}

        def give(a: Any) -> None:
            if todo:
                i = todo.pop()
                pending[a.shard.remote(bounds[i])] = (i, a)

        for a in actors:
            give(a)
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            i, a = pending.pop(ref)
            results[i] = self._get(ref, f"shard {i + 1}/{len(bounds)}")
            give(a)
            yield i

    def _get(self, ref: Any, what: str) -> Any:
        try:
            return ray.get(ref)
        except RayTaskError as e:
            if isinstance(e.cause, CVAgentsError):
                raise e.cause from None
            raise ComputeError(f"{self.where}: {what} failed: {e.cause!r}"[:400]) from None
        except RayActorError as e:
            first = (str(e).strip().splitlines() or [""])[0][:200]
            raise ComputeError(f"{self.where}: {what}: a worker died {RETRIES + 1} times ({first})") from None
