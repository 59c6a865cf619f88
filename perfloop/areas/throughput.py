"""The throughput area: throughput below its target.

- trigger ``throughput_rps.mean_ratio``: the summed mean ``throughput_rps`` of the window's
  label sets over the service's target (``throughput_target_rps``; no target, no signal; rule
  ``[detection] throughput``, a ratio), judged on the window's raw points;
- causes cpu, io, memory, measured by ``cpu_util``, ``io_wait`` and ``memory_pressure``
  (window means); the whole is their sum;
- simulated: a rate of :data:`HEADROOM` times the target under average load; a fault of
  level 1 divides it by 1 + :data:`SLOWDOWN` and raises its cause's utilisation.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Final

import numpy as np

from perfloop.actions.remedy import B, F, N, Remedy, by_cause, remedies_of
from perfloop.areas.base import Area, Array, Levels, Trigger
from perfloop.areas.view import SeriesView
from perfloop.streams.verify import SAMPLE_SHIFT

_r = remedies_of("throughput")

#: cause -> its remedies, in the flowchart's order.
REMEDIES: Final[dict[str, tuple[Remedy, ...]]] = by_cause(
    _r("cpu", "increase_workers", "Add workers to the pool.",
       "throughput_rps", "up", N("delta", 2, low=1, high=64)),
    _r("cpu", "optimize_mps", "Offload CPU-bound work to the accelerator.",
       "cpu_util", "down",
       F("offload_fraction", 0.5, low=0.0, high=1.0, low_inclusive=False), accelerator=True),
    _r("cpu", "profile_hot_paths", "Sample a CPU profile to find hot paths.",
       "cpu_util", "down",
       F("duration_s", 30.0, low=0.0, high=600.0, low_inclusive=False),
       N("sample_hz", 100, low=1, high=1000)),
    _r("io", "batch_operations", "Group I/O operations into batches.",
       "io_wait", "down",
       N("batch_size", 100, low=1, high=100_000), N("flush_interval_ms", 50, low=1, high=60_000)),
    _r("io", "async_processing", "Overlap I/O with asynchronous processing.",
       "io_wait", "down", N("concurrency", 16, low=1, high=1024)),
    _r("io", "cache_results", "Cache the results of repeated I/O.",
       "io_wait", "down", F("ttl_s", 60.0, low=0.0, high=86400.0, low_inclusive=False)),
    _r("memory", "reduce_object_size", "Use compact object layouts.",
       "memory_pressure", "down", B("compact", True)),
    _r("memory", "pool_resources", "Reuse objects and buffers from a pool.",
       "gc_pause_ms", "down", N("pool_size", 64, low=1, high=10_000)),
    _r("memory", "optimize_allocation", "Collect garbage less often, in larger steps.",
       "gc_pause_ms", "down", F("gc_threshold_factor", 2.0, low=1.0, high=100.0)),
)  # fmt: skip

#: (cause, remedy) -> (probability it removes the fault, the part of it it removes else) in
#: the simulator.
EFFICACY: Final[dict[tuple[str, str], tuple[float, float]]] = {
    ("cpu", "increase_workers"): (0.55, 0.30),
    ("cpu", "optimize_mps"): (0.75, 0.30),
    ("cpu", "profile_hot_paths"): (0.15, 0.00),
    ("io", "batch_operations"): (0.45, 0.20),
    ("io", "async_processing"): (0.80, 0.40),
    ("io", "cache_results"): (0.60, 0.30),
    ("memory", "reduce_object_size"): (0.40, 0.20),
    ("memory", "pool_resources"): (0.60, 0.30),
    ("memory", "optimize_allocation"): (0.80, 0.40),
}
#: Healthy throughput over the target, before the load pattern.
HEADROOM: Final[float] = 1.4
#: A level-1 throughput fault divides the rate by (1 + this).
SLOWDOWN: Final[float] = 0.9


def _ratio(view: SeriesView) -> float | None:
    target = view.config.throughput_target_rps
    rate = view.total("throughput_rps")
    return None if target is None or rate is None else rate / target


class Profile:
    """The simulated service's throughput (see the module docstring)."""

    efficacy = EFFICACY

    def baseline(self, scale: float, jitter: Callable[[float], float]) -> dict[str, float]:
        return {"cpu": jitter(0.35), "io": jitter(0.10), "pressure": jitter(0.22),
                "gc_ms": jitter(6.0)}  # fmt: skip

    def emit(
        self, base: Mapping[str, float], load: Array, levels: Levels, rng: np.random.Generator,
        target_rps: float, rate: float,
    ) -> dict[str, Array]:  # fmt: skip
        n = load.size
        cpu_f, io_f, mem_f = levels("cpu"), levels("io"), levels("memory")
        slowdown = 1 + SLOWDOWN * (cpu_f + io_f + mem_f)
        rps = target_rps * HEADROOM * load / slowdown
        noise = rng.normal(0.0, 0.015, (3, n))
        return {
            "throughput_rps": rps * rng.normal(1.0, 0.04, n),
            "cpu_util": np.clip(base["cpu"] * load + 0.55 * cpu_f + noise[0], 0.0, 1.0),
            "io_wait": np.clip(base["io"] + 0.6 * io_f + noise[1], 0.0, 1.0),
            "memory_pressure": np.clip(base["pressure"] + 0.6 * mem_f + noise[2], 0.0, 1.0),
            "gc_pause_ms": base["gc_ms"] * rng.lognormal(0.0, 0.3, n) * (1 + 10 * mem_f),
        }


class Synthetic:
    """Seeded throughput windows (see :mod:`perfloop.models.synthetic`)."""

    base = (0.05, 0.35)

    def window(self, parts: list[float], rng: random.Random) -> dict[str, float]:
        return {
            "cpu_util": min(parts[0], 0.99),
            "io_wait": min(parts[1], 0.99),
            "memory_pressure": min(parts[2], 0.99),
            "throughput_rps": rng.uniform(100, 1000),
            "gc_pause_ms": rng.uniform(1, 20),
        }

    def quiet(self, rng: random.Random) -> dict[str, float]:
        return {"throughput_rps": rng.uniform(100, 1000)}


class Throughput:
    """The throughput area (see the module docstring)."""

    name = "throughput"
    causes: Mapping[str, tuple[Remedy, ...]] = REMEDIES
    triggers = (
        Trigger("throughput_rps.mean_ratio", "throughput", ("throughput_rps",), _ratio,
                SAMPLE_SHIFT),
    )  # fmt: skip
    cause_metrics = ("cpu_util", "io_wait", "memory_pressure", "gc_pause_ms")
    signals = ("throughput_rps", *cause_metrics)
    components: Mapping[str, str] = {
        "cpu": "cpu_util",
        "io": "io_wait",
        "memory": "memory_pressure",
    }
    profile = Profile()
    synthetic = Synthetic()

    def read(self, view: SeriesView) -> dict[str, float | None]:
        return {m: view.mean(m) for m in self.signals}

    def whole(self, view: SeriesView, readings: Mapping[str, float | None]) -> float | None:
        return None


AREA: Final[Area] = Throughput()
