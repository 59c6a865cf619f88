"""The memory area: memory in use above 33.6 GB.

- trigger ``memory_bytes.max``: the greatest ``memory_bytes`` of the window (rule
  ``[detection] memory``), judged on the window's raw points;
- causes cache, model, workers, measured by ``memory_cache_bytes``, ``memory_model_bytes`` and
  ``memory_workers_bytes`` (window means), parts of the mean ``memory_bytes``;
- simulated: cache, model, workers and other bytes; a fault of level 1 adds to its cause's
  component until memory is :data:`OVERSHOOT` times the threshold.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Final

import numpy as np

from perfloop.actions.remedy import CODECS, B, E, F, N, Remedy, by_cause, remedies_of
from perfloop.areas.base import Area, Array, Levels, Trigger
from perfloop.areas.view import SeriesView
from perfloop.schemas.config import DetectionConfig
from perfloop.streams.verify import SAMPLE_SHIFT

_r = remedies_of("memory")

#: cause -> its remedies, in the flowchart's order.
REMEDIES: Final[dict[str, tuple[Remedy, ...]]] = by_cause(
    _r("cache", "reduce_ttl", "Shorten cache entry lifetimes by a factor.",
       "memory_cache_bytes", "down",
       F("factor", 0.5, low=0.0, high=1.0, low_inclusive=False)),
    _r("cache", "increase_eviction", "Evict a fraction of entries and evict more eagerly.",
       "memory_cache_bytes", "down",
       F("evict_fraction", 0.2, low=0.0, high=0.9, low_inclusive=False),
       E("policy", "lru", ("lru", "lfu", "ttl"))),
    _r("cache", "compress_data", "Store cached values compressed.",
       "memory_cache_bytes", "down",
       E("codec", "zstd", CODECS), N("level", 3, low=1, high=19)),
    _r("model", "use_mps_efficiently", "Cap accelerator memory and release cached blocks.",
       "memory_model_bytes", "down",
       F("memory_fraction", 0.8, low=0.0, high=1.0, low_inclusive=False),
       B("empty_cache", True), accelerator=True),
    _r("model", "batch_optimization", "Cap inference batches to bound peak model memory.",
       "memory_model_bytes", "down", N("max_batch_size", 32, low=1, high=4096)),
    _r("model", "reduce_precision", "Run the model in a narrower number type.",
       "memory_model_bytes", "down", E("dtype", "float16", ("float16", "bfloat16", "int8"))),
    _r("workers", "adjust_pool_size", "Change the worker pool by a number of workers.",
       "memory_workers_bytes", "down",
       N("delta", -2, low=-64, high=64), N("min_workers", 1, low=1, high=1024)),
    _r("workers", "limit_queue_size", "Bound the work queue; excess work is refused.",
       "queue_depth", "down", N("max_queue", 1000, low=1, high=1_000_000)),
    _r("workers", "improve_cleanup", "Release worker memory more often.",
       "memory_workers_bytes", "down",
       F("gc_interval_s", 60.0, low=0.0, high=3600.0, low_inclusive=False),
       B("force_gc", True)),
)  # fmt: skip

#: (cause, remedy) -> (probability it removes the fault, the part of it it removes else) in
#: the simulator.
EFFICACY: Final[dict[tuple[str, str], tuple[float, float]]] = {
    ("cache", "reduce_ttl"): (0.55, 0.30),
    ("cache", "increase_eviction"): (0.35, 0.15),
    ("cache", "compress_data"): (0.80, 0.40),
    ("model", "use_mps_efficiently"): (0.40, 0.20),
    ("model", "batch_optimization"): (0.60, 0.30),
    ("model", "reduce_precision"): (0.85, 0.40),
    ("workers", "adjust_pool_size"): (0.50, 0.30),
    ("workers", "limit_queue_size"): (0.30, 0.20),
    ("workers", "improve_cleanup"): (0.80, 0.40),
}
#: A level-1 fault drives memory to this multiple of the (default) memory threshold.
OVERSHOOT: Final[float] = 1.2
FIRE: Final[float] = DetectionConfig().memory.fire


def _max(view: SeriesView) -> float | None:
    return view.max("memory_bytes")


class Profile:
    """The simulated service's memory (see the module docstring)."""

    efficacy = EFFICACY

    def baseline(self, scale: float, jitter: Callable[[float], float]) -> dict[str, float]:
        base = {
            "cache": jitter(6e9 * scale),
            "model": jitter(7e9 * scale),
            "workers": jitter(4e9 * scale),
            "other": jitter(3e9 * scale),
        }
        base["fault"] = OVERSHOOT * FIRE - sum(base.values())
        base["queue_depth"] = jitter(20.0)
        base["worker_count"] = round(jitter(8.0))
        return base

    def emit(
        self, base: Mapping[str, float], load: Array, levels: Levels, rng: np.random.Generator,
        target_rps: float, rate: float,
    ) -> dict[str, Array]:  # fmt: skip
        n, fault = load.size, base["fault"]

        def noise(cv: float) -> Array:
            return rng.normal(1.0, cv, n)

        cache = base["cache"] * (0.9 + 0.1 * load) * noise(0.02) + levels("cache") * fault
        model = base["model"] * noise(0.01) + levels("model") * fault
        workers = base["workers"] * load * noise(0.03) + levels("workers") * fault
        other = base["other"] * noise(0.03)
        queue = rng.poisson(base["queue_depth"] * load * (1 + 4 * levels("workers")))
        count = base["worker_count"] + np.round(6 * levels("workers"))
        return {
            "memory_bytes": cache + model + workers + other,
            "memory_cache_bytes": cache,
            "memory_model_bytes": model,
            "memory_workers_bytes": workers,
            "queue_depth": queue.astype(np.float64),
            "worker_count": count.astype(np.float64),
        }


class Synthetic:
    """Seeded memory windows (see :mod:`perfloop.models.synthetic`)."""

    base = (1e9, 8e9)

    def window(self, parts: list[float], rng: random.Random) -> dict[str, float]:
        return {
            "memory_cache_bytes": parts[0],
            "memory_model_bytes": parts[1],
            "memory_workers_bytes": parts[2],
            "memory_bytes": sum(parts) + rng.uniform(2e9, 5e9),
            "queue_depth": rng.uniform(0, 50),
            "worker_count": rng.uniform(4, 16),
        }

    def quiet(self, rng: random.Random) -> dict[str, float]:
        return {"memory_bytes": rng.uniform(1e10, 3e10)}


class Memory:
    """The memory area (see the module docstring)."""

    name = "memory"
    causes: Mapping[str, tuple[Remedy, ...]] = REMEDIES
    triggers = (Trigger("memory_bytes.max", "memory", ("memory_bytes",), _max, SAMPLE_SHIFT),)
    cause_metrics = (
        "memory_cache_bytes",
        "memory_model_bytes",
        "memory_workers_bytes",
        "queue_depth",
        "worker_count",
    )
    signals = ("memory_bytes", *cause_metrics)
    components: Mapping[str, str] = {
        "cache": "memory_cache_bytes",
        "model": "memory_model_bytes",
        "workers": "memory_workers_bytes",
    }
    profile = Profile()
    synthetic = Synthetic()

    def read(self, view: SeriesView) -> dict[str, float | None]:
        return {"memory_bytes": _max(view), **{m: view.mean(m) for m in self.cause_metrics}}

    def whole(self, view: SeriesView, readings: Mapping[str, float | None]) -> float | None:
        return view.mean("memory_bytes")


AREA: Final[Area] = Memory()
