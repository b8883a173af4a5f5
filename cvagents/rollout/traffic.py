"""Traffic replay: the validation queries replayed as live traffic through a stage's router.

For a stage with weight ``w`` the router sends a share ``w`` of the requests to the candidate
(the version live in the stage) and the rest to the current production version. In shadow
(``w == 0``) production serves every request and the candidate gets a mirrored copy whose
answer is compared (top-10 overlap with production) but never served. Every request's latency
and error is recorded.

- SLO compliance: the share of the candidate's requests answered without error within the
  latency objective (``rollout.slo.latency_objective_ms``).
- P0 incidents (``rollout.incidents``): the candidate failing to load or crashing, or its
  error rate above the bound.
- Time observed: a replay of ``m`` minutes routes ``m × requests_per_minute`` requests, and
  counts as ``m`` minutes of observed traffic for the version at the stage. Minutes and
  requests add up across replays of the same version at the same stage (see metrics_store),
  so a low-traffic stage gathers its evidence over several heartbeats, as a real canary does;
  the figure is deterministic (it does not depend on the machine's speed or the run's time
  scale) and a version cannot pass by sitting idle — every observed minute is a batch of
  requests it really answered.

A server is a model adapter (``cvagents.models.adapter``): ``query(texts, k)`` answers the
top-k document ids of each text; one request is one text. An answer that is not a list of ids,
or holds none, is an error answer, like an exception. Tests replay through slow or failing
fakes without a model.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from cvagents.clock import stopwatch
from cvagents.models.adapter import ModelAdapter, answer_problem
from cvagents.models.compute import DEFAULT_SHARD_SIZE, Engine, Loaded, ModelRef, run_loaded

Server = ModelAdapter


def route(n: int, weight: float, seed: int = 0) -> list[bool]:
    """Which of ``n`` requests go to the candidate: exactly ⌊n·w⌋ or ⌈n·w⌉ of them, spread
    evenly with a seeded offset (deterministic, like a hash-based router)."""
    if weight <= 0:
        return [False] * n
    if weight >= 1:
        return [True] * n
    off = random.Random(seed).random()
    return [math.floor((i + 1) * weight + off) - math.floor(i * weight + off) == 1 for i in range(n)]


def request_stream(texts: list[str], n: int, seed: int = 0) -> list[str]:
    """``n`` requests drawn from the queries, each pass over them in a fresh shuffled order."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        order = list(range(len(texts)))
        rng.shuffle(order)
        out.extend(texts[i] for i in order[: n - len(out)])
    return out


def quantile(sorted_values: list[float], q: float) -> float | None:
    """Linear-interpolation quantile (numpy's default) of already sorted values."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass
class _Answer:
    latency_ms: float
    error: str | None
    top: list[str] | None


def _serve(server: Server, text: str, k: int) -> _Answer:
    sw = stopwatch()
    try:
        res = server.query([text], k)
    except Exception as e:  # noqa: BLE001 - any failure of the model is an error answer
        return _Answer(sw.elapsed() * 1e3, f"{type(e).__name__}: {e}"[:200], None)
    ms = sw.elapsed() * 1e3
    problem = answer_problem(res, 1)
    if problem:
        return _Answer(ms, f"invalid response: {problem}"[:200], None)
    if not res[0]:
        return _Answer(ms, "invalid response: no document ids", None)
    return _Answer(ms, None, list(res[0]))


@dataclass
class ReplayJob:
    """The per-request work, shard by shard (``cvagents.models.compute``): each request served
    by production (when routed there, or in shadow) and then by the candidate (when routed to
    it), as ``(production answer, candidate answer)``, None where a model did not serve it."""

    stream: list[str]
    to_candidate: list[bool]
    weight: float
    k: int
    warmup_texts: list[str]
    required: tuple[str, ...] = ()

    @property
    def shadow(self) -> bool:
        return self.weight <= 0

    def warm(self, loaded: Loaded) -> None:
        for server in (loaded.adapters.get("candidate"), loaded.adapters.get("production")):
            for text in self.warmup_texts:
                if server is not None:
                    try:
                        server.query([text], self.k)
                    except Exception:  # noqa: BLE001 - counted when timed, not here
                        pass

    def __call__(self, loaded: Loaded, shard: tuple[int, int]) -> list[tuple[_Answer | None, _Answer | None]]:
        cand, prod = loaded.adapters.get("candidate"), loaded.adapters.get("production")
        out: list[tuple[_Answer | None, _Answer | None]] = []
        for i in range(*shard):
            text = self.stream[i]
            p = _serve(prod, text, self.k) if prod is not None and (self.shadow or not self.to_candidate[i]) else None
            c = _serve(cand, text, self.k) if cand is not None and self.to_candidate[i] else None
            out.append((p, c))
        return out


def _job(texts: list[str], weight: float, requests: int, k: int, seed: int, warmup: int) -> ReplayJob:
    to_candidate = [True] * requests if weight <= 0 else route(requests, weight, seed)
    return ReplayJob(request_stream(texts, requests, seed), to_candidate, weight, k, texts[:warmup])


def _desc(weight: float) -> str:
    return "traffic replay: " + ("shadow (mirrored)" if weight <= 0 else f"{weight:.0%} to the candidate")


def replay(
    candidate: Server | None,
    production: Server | None,
    texts: list[str],
    *,
    weight: float,
    requests: int,
    slo_ms: float,
    p0_error_rate: float,
    p0_on_crash: bool = True,
    k: int = 10,
    seed: int = 0,
    warmup: int = 10,
    candidate_error: str | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
) -> dict[str, Any]:
    """Replay ``requests`` requests through servers open in this process; ``candidate`` None
    means it failed to load (``candidate_error`` says why). Returns the summary and the
    per-request log."""
    job = _job(texts, weight, requests, k, seed, warmup)
    adapters = {r: s for r, s in (("candidate", candidate), ("production", production)) if s is not None}
    answers = [a for r in run_loaded(Loaded(adapters), job, requests, shard_size, _desc(weight)) for a in r]
    crash = (candidate_error or "failed to load") if candidate is None else None
    return summarise(job, answers, production is not None, crash, slo_ms, p0_error_rate, p0_on_crash, k)


def replay_models(
    engine: Engine,
    candidate: ModelRef,
    production: ModelRef | None,
    texts: list[str],
    *,
    weight: float,
    requests: int,
    slo_ms: float,
    p0_error_rate: float,
    p0_on_crash: bool = True,
    k: int = 10,
    seed: int = 0,
    warmup: int = 10,
) -> tuple[dict[str, Any], dict[str, str]]:
    """``replay`` with the models opened by ``engine``'s workers (``cvagents.models.compute``):
    the same summary, and the load errors by role (a candidate that cannot load is a crash)."""
    job = _job(texts, weight, requests, k, seed, warmup)
    models = {"candidate": candidate, **({"production": production} if production else {})}
    out = engine.run(models, job, requests, _desc(weight))
    errors = out.loaded.errors
    has_production = production is not None and "production" not in errors
    answers = [a for r in out.results for a in r]
    res = summarise(job, answers, has_production, errors.get("candidate"), slo_ms, p0_error_rate, p0_on_crash, k)
    return res, errors


def summarise(
    job: ReplayJob,
    answers: list[tuple[_Answer | None, _Answer | None]],
    has_production: bool,
    crash: str | None,
    slo_ms: float,
    p0_error_rate: float,
    p0_on_crash: bool,
    k: int,
) -> dict[str, Any]:
    """The replay's summary and per-request log, from every request's answers in order (a
    candidate answer of None where it was routed to but did not load: ``crash`` says why)."""
    shadow, to_candidate, requests, weight = job.shadow, job.to_candidate, len(job.stream), job.weight
    crashed = crash is not None
    route_log: list[str] = []  # per request: c = candidate served, p = production, u = unserved, m = mirrored (shadow)
    c_lat: list[float | None] = []
    p_lat: list[float | None] = []
    c_err: list[list] = []
    p_err: list[list] = []
    within = errors = 0
    overlap_sum, overlap_n = 0.0, 0
    ok_latencies: list[float] = []
    for i, (p_ans, c_ans) in enumerate(answers):
        if p_ans is not None:
            p_lat.append(round(p_ans.latency_ms, 4))
            if p_ans.error:
                p_err.append([i, p_ans.error])
        else:
            p_lat.append(None)
        if not to_candidate[i]:
            route_log.append("p" if has_production else "u")
            c_lat.append(None)
            continue
        route_log.append("m" if shadow else "c")
        ans = c_ans or _Answer(0.0, f"candidate not serving: {crash}", None)
        c_lat.append(round(ans.latency_ms, 4))
        if ans.error:
            errors += 1
            c_err.append([i, ans.error])
        else:
            ok_latencies.append(ans.latency_ms)
            if ans.latency_ms <= slo_ms:
                within += 1
            if shadow and ans.top is not None and p_ans is not None and p_ans.top is not None:
                overlap_sum += len(set(ans.top[:k]) & set(p_ans.top[:k])) / max(1, min(k, len(p_ans.top)))
                overlap_n += 1
    n_c = sum(1 for r in route_log if r in "cm")
    ok_latencies.sort()
    incidents = []
    if crashed and p0_on_crash and n_c:
        incidents.append(f"P0: candidate crashed ({crash})")
    error_rate = errors / n_c if n_c else None
    if error_rate is not None and error_rate > p0_error_rate:
        incidents.append(f"P0: candidate error rate {error_rate:.4f} above the bound {p0_error_rate}")
    failed_p = {i for i, _ in p_err}
    prod_ok = sorted(x for i, x in enumerate(p_lat) if x is not None and i not in failed_p)

    def q(v: list[float], p: float) -> float | None:
        x = quantile(v, p)
        return round(x, 4) if x is not None else None

    return {
        "mode": "shadow" if shadow else "split",
        "traffic_weight": weight,
        "requests": requests,
        "candidate_requests": n_c,
        "production_requests": sum(1 for x in p_lat if x is not None),
        "unserved_requests": route_log.count("u"),
        "errors": errors,
        "within_slo": within,
        "slo_compliance": round(within / n_c, 6) if n_c else None,
        "error_rate": round(error_rate, 6) if error_rate is not None else None,
        "serve_latency_p50_ms": q(ok_latencies, 0.5),
        "serve_latency_p95_ms": q(ok_latencies, 0.95),
        "serve_latency_p99_ms": q(ok_latencies, 0.99),
        "production_latency_p95_ms": q(prod_ok, 0.95),
        "production_errors": len(p_err),
        "top10_overlap": round(overlap_sum / overlap_n, 6) if overlap_n else None,
        "overlap_n": overlap_n,
        "crashed": crashed,
        "p0_incidents": len(incidents),
        "incidents": incidents,
        "per_request": {
            "route": "".join(route_log),
            "candidate_latency_ms": c_lat,
            "candidate_errors": c_err,
            "production_latency_ms": p_lat,
            "production_errors": p_err,
        },
    }
