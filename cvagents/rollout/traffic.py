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
from cvagents.models.progress import progress

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
) -> dict[str, Any]:
    """Replay ``requests`` requests; ``candidate`` None means it failed to load
    (``candidate_error`` says why). Returns the summary and the per-request log."""
    shadow = weight <= 0
    stream = request_stream(texts, requests, seed)
    to_candidate = [True] * requests if shadow else route(requests, weight, seed)
    for server in (candidate, production):
        for text in texts[:warmup]:
            if server is not None:
                try:
                    server.query([text], k)
                except Exception:  # noqa: BLE001 - counted when timed, not here
                    pass
    route_log: list[str] = []  # per request: c = candidate served, p = production, u = unserved, m = mirrored (shadow)
    c_lat: list[float | None] = []
    p_lat: list[float | None] = []
    c_err: list[list] = []
    p_err: list[list] = []
    within = errors = 0
    overlap_sum, overlap_n = 0.0, 0
    ok_latencies: list[float] = []
    desc = "traffic replay: " + ("shadow (mirrored)" if shadow else f"{weight:.0%} to the candidate")
    for i, text in enumerate(progress(stream, desc, total=requests, unit="req")):
        p_ans = None
        if production is not None and (shadow or not to_candidate[i]):
            p_ans = _serve(production, text, k)
            p_lat.append(round(p_ans.latency_ms, 4))
            if p_ans.error:
                p_err.append([i, p_ans.error])
        else:
            p_lat.append(None)
        if not to_candidate[i]:
            route_log.append("p" if production is not None else "u")
            c_lat.append(None)
            continue
        route_log.append("m" if shadow else "c")
        if candidate is None:
            ans = _Answer(0.0, f"candidate not serving: {candidate_error or 'failed to load'}", None)
        else:
            ans = _serve(candidate, text, k)
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
    crashed = candidate is None
    if crashed and p0_on_crash and n_c:
        incidents.append(f"P0: candidate crashed ({candidate_error or 'failed to load'})")
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
