"""Seeded synthetic window histories with a known cause, for tests and benchmarks.

In every area the three causes' components start at random levels (so the largest share is
often *not* the cause) and, over the history, the true cause's component grows clearly
faster than the others: the cause is told by growth rates more than by shares, so the rule
prior alone is not enough and a model has to learn.

``concept=1`` is an abrupt concept drift: the instrumentation changed and each cause now
shows in the *next* cause's series (in flowchart order), as if the series had been renamed.

>>> import random
>>> from perfloop.models.features import extract_features
>>> history = synthetic_history("latency", "network", random.Random(1))
>>> len(history), history[-1].service
(4, 'svc')
>>> x = extract_features("latency", history)
>>> parts = ("processing", "network", "db")
>>> max(parts, key=lambda p: x[f"latency_{p}_ms_growth"])
'network'
"""

from __future__ import annotations

import random
from collections.abc import Callable

from perfloop.models.signals import ACCURACY_FIRE, ENTROPY_FIRE, SPARSITY_FIRE
from perfloop.schemas.messages import Breach, SeriesAggregate, WindowAggregate
from perfloop.schemas.vocabulary import TRIGGER_METRICS, causes_of

START_TS = 1_700_000_000.0
COUNT = 10

#: area -> (component base range, the cause's growth per window, the others' growth).
_SHAPES: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "memory": ((1e9, 8e9), (0.12, 0.30), (-0.06, 0.04)),
    "latency": ((25.0, 200.0), (0.12, 0.30), (-0.06, 0.04)),
    "throughput": ((0.05, 0.35), (0.12, 0.30), (-0.06, 0.04)),
    "cache": ((50.0, 400.0), (0.12, 0.30), (-0.06, 0.04)),
    "attribution": ((0.12, 0.50), (0.12, 0.30), (-0.06, 0.04)),
}


def _series(metric: str, mean: float, spread: float = 0.1) -> SeriesAggregate:
    mean = max(0.0, mean)
    return SeriesAggregate(
        metric=metric,
        count=COUNT,
        sum=mean * COUNT,
        min=mean * (1 - spread),
        max=mean * (1 + spread),
        mean=mean,
        last=mean,
        p50=mean,
        p95=mean * (1 + 0.8 * spread),
        p99=mean * (1 + 0.9 * spread),
    )


def _memory(parts: list[float], rng: random.Random) -> dict[str, float]:
    return {
        "memory_cache_bytes": parts[0],
        "memory_model_bytes": parts[1],
        "memory_workers_bytes": parts[2],
        "memory_bytes": sum(parts) + rng.uniform(2e9, 5e9),
        "queue_depth": rng.uniform(0, 50),
        "worker_count": rng.uniform(4, 16),
    }


def _latency(parts: list[float], rng: random.Random) -> dict[str, float]:
    return {
        "latency_processing_ms": parts[0],
        "latency_network_ms": parts[1],
        "latency_db_ms": parts[2],
        "latency_ms": sum(parts) + rng.uniform(10, 40),
        "payload_bytes": rng.uniform(1e3, 1e5),
        "db_connections_in_use": rng.uniform(5, 50),
    }


def _throughput(parts: list[float], rng: random.Random) -> dict[str, float]:
    return {
        "cpu_util": min(parts[0], 0.99),
        "io_wait": min(parts[1], 0.99),
        "memory_pressure": min(parts[2], 0.99),
        "throughput_rps": rng.uniform(100, 1000),
        "gc_pause_ms": rng.uniform(1, 20),
    }


def _cache(parts: list[float], rng: random.Random) -> dict[str, float]:
    misses = sum(parts)
    # counters: the window's sum is the count, so the mean is count / COUNT
    return {
        "cache_evictions": parts[0] / COUNT,
        "cache_expirations": parts[1] / COUNT,
        "cache_misses": misses / COUNT,
        "cache_hits": misses * rng.uniform(2.5, 4.0) / COUNT,
        "cache_keys": rng.uniform(1e4, 1e5),
        "cache_size_bytes": rng.uniform(1e8, 1e9),
    }


def _attribution(parts: list[float], rng: random.Random) -> dict[str, float]:
    return {
        "attribution_entropy": min(ENTROPY_FIRE * parts[0], 1.0),
        "attribution_sparsity": max(1.0 - (1.0 - SPARSITY_FIRE) * parts[1], 0.0),
        "attribution_accuracy": max(1.0 - (1.0 - ACCURACY_FIRE) * parts[2], 0.0),
        "feature_count": rng.uniform(20, 200),
        "calibration_error": rng.uniform(0.01, 0.1),
    }


_WRITERS: dict[str, Callable[[list[float], random.Random], dict[str, float]]] = {
    "memory": _memory,
    "latency": _latency,
    "throughput": _throughput,
    "cache": _cache,
    "attribution": _attribution,
}


def _context(rng: random.Random) -> dict[str, float]:
    """Other areas' trigger series, at unremarkable levels."""
    misses = rng.uniform(10, 50)
    return {
        "memory_bytes": rng.uniform(1e10, 3e10),
        "latency_ms": rng.uniform(50, 400),
        "throughput_rps": rng.uniform(100, 1000),
        "cache_hits": misses * rng.uniform(5, 10),
        "cache_misses": misses,
        "attribution_entropy": rng.uniform(0.3, 0.8),
        "attribution_sparsity": rng.uniform(0.3, 0.6),
        "attribution_accuracy": rng.uniform(0.85, 0.95),
    }


def synthetic_history(
    area: str,
    cause: str,
    rng: random.Random,
    *,
    windows: int = 4,
    concept: int = 0,
    drop: float = 0.0,
    service: str = "svc",
    start: float = START_TS,
    length_s: float = 10.0,
) -> list[WindowAggregate]:
    """``windows`` consecutive windows (oldest first) of a service whose ``area`` breaches
    because of ``cause``; each series is left out with probability ``drop``."""
    causes = causes_of(area)
    grows = causes[(causes.index(cause) + concept) % len(causes)]
    (lo, hi), cause_growth, other_growth = _SHAPES[area]
    base = [rng.uniform(lo, hi) for _ in causes]
    rate = [rng.uniform(*(cause_growth if c == grows else other_growth)) for c in causes]
    out: list[WindowAggregate] = []
    for i in range(windows):
        parts = [b * (1 + g) ** i * rng.gauss(1.0, 0.02) for b, g in zip(base, rate, strict=True)]
        values = {**_context(rng), **_WRITERS[area](parts, rng)}
        series = [
            _series(metric, value)
            for metric, value in values.items()
            if drop <= 0 or rng.random() >= drop
        ]
        t0 = start + i * length_s
        out.append(
            WindowAggregate(
                window_id=f"{service}:{t0:.0f}",
                service=service,
                start=t0,
                end=t0 + length_s,
                series=series,
            )
        )
    return out


def labelled_stream(
    area: str, n: int, seed: int = 0, drift_at: int | None = None, drop: float = 0.0
) -> list[tuple[dict[str, float], str]]:
    """``n`` (features, cause) pairs of ``area``, causes drawn uniformly; from label
    ``drift_at`` on, the stream follows ``concept=1``."""
    from perfloop.models.features import extract_features

    rng = random.Random(seed)
    causes = causes_of(area)
    out = []
    for i in range(n):
        cause = rng.choice(causes)
        concept = 1 if drift_at is not None and i >= drift_at else 0
        history = synthetic_history(area, cause, rng, concept=concept, drop=drop)
        out.append((extract_features(area, history), cause))
    return out


def synthetic_breach(area: str, history: list[WindowAggregate], breach_id: str = "b-1") -> Breach:
    """A breach of ``area`` in the last window of ``history`` (for tests and benchmarks)."""
    last = history[-1]
    return Breach(
        breach_id=breach_id,
        service=last.service,
        area=area,
        signal=TRIGGER_METRICS[area][0],
        observed=1.0,
        threshold=0.5,
        direction="above",
        window_start=last.start,
        window_end=last.end,
        first_window_start=history[0].start,
        windows=len(history),
    )
