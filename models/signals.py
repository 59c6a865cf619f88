"""The per-window signals of each area: what a window aggregate says about one area.

A *signal* is one number read from one :class:`~perfloop.schemas.messages.WindowAggregate` (or
``None`` when the window does not carry it). Each area has a fixed, ordered set of signals
and a *breakdown*: for each cause, the signal that measures that cause's part of the
problem, and the whole those parts are shares of.

- memory: cache ``memory_cache_bytes``, model ``memory_model_bytes``, workers
  ``memory_workers_bytes``; whole: mean ``memory_bytes``.
- latency: processing ``latency_processing_ms``, network ``latency_network_ms``, database
  ``latency_db_ms``; whole: mean ``latency_ms``.
- throughput: cpu ``cpu_util``, io ``io_wait``, memory ``memory_pressure``; whole: their sum.
- cache: capacity ``cache_evictions``, expiry ``cache_expirations``, key_space
  ``cache_cold_misses`` (misses neither evicted nor expired); whole: ``cache_misses``.
- attribution: entropy ``entropy_ratio``, sparsity ``density_ratio``, accuracy
  ``error_ratio`` (each metric's badness over its threshold's badness, e.g.
  ``(1 - accuracy) / (1 - 0.80)``); whole: their sum.

Trigger signals use the detector's statistic (max ``memory_bytes``, p95 ``latency_ms``,
mean ``throughput_rps``, hit rate from summed hits and misses); every other series is read
as its mean, counters (cache) as their sum over the window.

>>> from perfloop.models.synthetic import synthetic_history
>>> import random
>>> window = synthetic_history("memory", "cache", random.Random(0))[-1]
>>> signals = window_signals("memory", window)
>>> list(signals) == list(SIGNALS["memory"])
True
>>> whole, parts = breakdown("memory", window)
>>> sorted(parts) == ["cache", "model", "workers"] and whole is not None and whole > 0
True
"""

from __future__ import annotations

from typing import Final

from perfloop.schemas.config import DetectionConfig
from perfloop.schemas.messages import WindowAggregate

_DETECTION = DetectionConfig.model_validate({})
#: The thresholds the attribution ratios and the context signals are relative to.
ENTROPY_FIRE: Final[float] = _DETECTION.attribution_entropy.fire
SPARSITY_FIRE: Final[float] = _DETECTION.attribution_sparsity.fire
ACCURACY_FIRE: Final[float] = _DETECTION.attribution_accuracy.fire
MEMORY_FIRE: Final[float] = _DETECTION.memory.fire
LATENCY_FIRE: Final[float] = _DETECTION.latency.fire

#: area -> its signals, in feature order.
SIGNALS: Final[dict[str, tuple[str, ...]]] = {
    "memory": (
        "memory_bytes",
        "memory_cache_bytes",
        "memory_model_bytes",
        "memory_workers_bytes",
        "queue_depth",
        "worker_count",
    ),
    "latency": (
        "latency_ms",
        "latency_processing_ms",
        "latency_network_ms",
        "latency_db_ms",
        "payload_bytes",
        "db_connections_in_use",
    ),
    "throughput": ("throughput_rps", "cpu_util", "io_wait", "memory_pressure", "gc_pause_ms"),
    "cache": (
        "hit_rate",
        "cache_misses",
        "cache_evictions",
        "cache_expirations",
        "cache_cold_misses",
        "cache_keys",
        "cache_size_bytes",
    ),
    "attribution": (
        "attribution_entropy",
        "attribution_sparsity",
        "attribution_accuracy",
        "feature_count",
        "calibration_error",
        "entropy_ratio",
        "density_ratio",
        "error_ratio",
    ),
}

#: area -> cause -> the signal measuring that cause's part.
COMPONENTS: Final[dict[str, dict[str, str]]] = {
    "memory": {
        "cache": "memory_cache_bytes",
        "model": "memory_model_bytes",
        "workers": "memory_workers_bytes",
    },
    "latency": {
        "processing": "latency_processing_ms",
        "network": "latency_network_ms",
        "database": "latency_db_ms",
    },
    "throughput": {"cpu": "cpu_util", "io": "io_wait", "memory": "memory_pressure"},
    "cache": {
        "capacity": "cache_evictions",
        "expiry": "cache_expirations",
        "key_space": "cache_cold_misses",
    },
    "attribution": {
        "entropy": "entropy_ratio",
        "sparsity": "density_ratio",
        "accuracy": "error_ratio",
    },
}


def _mean(window: WindowAggregate, metric: str) -> float | None:
    s = window.get(metric)
    return None if s is None else s.mean


def _sum(window: WindowAggregate, metric: str) -> float | None:
    s = window.get(metric)
    return None if s is None else s.sum


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den <= 0:
        return None
    return num / den


def _memory(w: WindowAggregate) -> dict[str, float | None]:
    total = w.get("memory_bytes")
    out: dict[str, float | None] = {"memory_bytes": None if total is None else total.max}
    for name in SIGNALS["memory"][1:]:
        out[name] = _mean(w, name)
    return out


def _latency(w: WindowAggregate) -> dict[str, float | None]:
    total = w.get("latency_ms")
    out: dict[str, float | None] = {"latency_ms": None if total is None else total.p95}
    for name in SIGNALS["latency"][1:]:
        out[name] = _mean(w, name)
    return out


def _throughput(w: WindowAggregate) -> dict[str, float | None]:
    return {name: _mean(w, name) for name in SIGNALS["throughput"]}


def _cache(w: WindowAggregate) -> dict[str, float | None]:
    hits, misses = _sum(w, "cache_hits"), _sum(w, "cache_misses")
    evictions, expirations = _sum(w, "cache_evictions"), _sum(w, "cache_expirations")
    requests = None if hits is None or misses is None else hits + misses
    cold = None
    if misses is not None and evictions is not None and expirations is not None:
        cold = max(0.0, misses - evictions - expirations)
    return {
        "hit_rate": _ratio(hits, requests),
        "cache_misses": misses,
        "cache_evictions": evictions,
        "cache_expirations": expirations,
        "cache_cold_misses": cold,
        "cache_keys": _mean(w, "cache_keys"),
        "cache_size_bytes": _mean(w, "cache_size_bytes"),
    }


def _attribution(w: WindowAggregate) -> dict[str, float | None]:
    out = {name: _mean(w, name) for name in SIGNALS["attribution"][:5]}
    entropy, sparsity = out["attribution_entropy"], out["attribution_sparsity"]
    accuracy = out["attribution_accuracy"]
    out["entropy_ratio"] = None if entropy is None else entropy / ENTROPY_FIRE
    out["density_ratio"] = None if sparsity is None else (1.0 - sparsity) / (1.0 - SPARSITY_FIRE)
    out["error_ratio"] = None if accuracy is None else (1.0 - accuracy) / (1.0 - ACCURACY_FIRE)
    return out


_READERS = {
    "memory": _memory,
    "latency": _latency,
    "throughput": _throughput,
    "cache": _cache,
    "attribution": _attribution,
}


def window_signals(area: str, window: WindowAggregate) -> dict[str, float | None]:
    """The signals of ``area`` read from ``window``, in :data:`SIGNALS` order."""
    try:
        reader = _READERS[area]
    except KeyError:
        raise ValueError(f"area: unknown area {area!r}; known: {', '.join(_READERS)}") from None
    return reader(window)


def breakdown(area: str, window: WindowAggregate) -> tuple[float | None, dict[str, float | None]]:
    """The whole and each cause's component for ``area`` in ``window``.

    The whole is the area's total (memory in use, latency, cache misses) when the window
    carries it, else the sum of the components that are present.
    """
    signals = window_signals(area, window)
    parts = {cause: signals[name] for cause, name in COMPONENTS[area].items()}
    whole: float | None = None
    if area == "memory":
        whole = _mean(window, "memory_bytes")
    elif area == "latency":
        whole = _mean(window, "latency_ms")
    elif area == "cache":
        whole = signals["cache_misses"]
    present = [v for v in parts.values() if v is not None]
    if (whole is None or whole <= 0) and present:
        whole = sum(present)
    return whole, parts


def context_signal(area: str, window: WindowAggregate) -> float | None:
    """One number for how bad ``area`` looks in ``window`` (used as other areas' context).

    memory and latency: trigger level over its fire threshold; throughput: the mean rate;
    cache: hit rate; attribution: the largest of the three badness ratios.
    """
    s = window_signals(area, window)
    if area == "memory":
        v = s["memory_bytes"]
        return None if v is None else v / MEMORY_FIRE
    if area == "latency":
        v = s["latency_ms"]
        return None if v is None else v / LATENCY_FIRE
    if area == "throughput":
        return s["throughput_rps"]
    if area == "cache":
        return s["hit_rate"]
    ratios = [v for k, v in s.items() if k.endswith("_ratio") and v is not None]
    return max(ratios) if ratios else None
