"""The latency area: p95 latency above 500 ms.

- trigger ``latency_ms.p95``: the greatest p95 of ``latency_ms`` over the window's label sets
  (rule ``[detection] latency``), judged on the window's raw points;
- causes processing, network, database, measured by ``latency_processing_ms``,
  ``latency_network_ms`` and ``latency_db_ms`` (window means), parts of the mean ``latency_ms``;
- simulated: a lognormal body with rare Pareto-tailed spikes; a fault of level 1 adds
  :data:`FAULT_MS` to its cause's component.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Final

import numpy as np

from perfloop.actions.remedy import B, E, F, N, Remedy, by_cause, remedies_of
from perfloop.areas.base import Area, Array, Levels, Trigger
from perfloop.areas.view import SeriesView
from perfloop.schemas.config import DetectionConfig
from perfloop.streams.verify import SAMPLE_SHIFT

_r = remedies_of("latency")

#: cause -> its remedies, in the flowchart's order.
REMEDIES: Final[dict[str, tuple[Remedy, ...]]] = by_cause(
    _r("processing", "increase_batch_size", "Process more items per batch.",
       "latency_processing_ms", "down",
       F("factor", 2.0, low=1.0, high=16.0, low_inclusive=False),
       N("max_batch_size", 1024, low=1, high=65536)),
    _r("processing", "optimize_mps_usage", "Keep the hot path on the accelerator.",
       "latency_processing_ms", "down",
       B("pin_memory", True), B("async_transfer", True), accelerator=True),
    _r("processing", "improve_caching", "Cache intermediate results of processing.",
       "latency_processing_ms", "down",
       F("ttl_s", 300.0, low=0.0, high=86400.0, low_inclusive=False),
       N("max_entries", 100_000, low=1, high=100_000_000)),
    _r("network", "reduce_payload_size", "Send smaller responses; drop optional fields.",
       "payload_bytes", "down",
       N("max_payload_bytes", 1_000_000, low=1024, high=100_000_000),
       B("drop_optional_fields", True)),
    _r("network", "use_compression", "Compress payloads on the wire.",
       "latency_network_ms", "down",
       E("codec", "gzip", ("gzip", "br", "zstd")), N("min_size_bytes", 1024, low=0, high=10**7)),
    _r("network", "optimize_routes", "Prefer local endpoints and reuse connections.",
       "latency_network_ms", "down", B("prefer_local", True), B("reuse_connections", True)),
    _r("database", "index_optimization", "Analyse, rebuild or propose indexes.",
       "latency_db_ms", "down", E("mode", "analyze", ("analyze", "reindex", "suggest"))),
    _r("database", "query_tuning", "Bound statement time and cache query plans.",
       "latency_db_ms", "down",
       N("statement_timeout_ms", 5000, low=100, high=600_000), B("plan_cache", True)),
    _r("database", "connection_pool", "Change the database connection pool size.",
       "db_connections_in_use", "down",
       N("delta", 5, low=-100, high=100), N("max_size", 50, low=1, high=1000)),
)  # fmt: skip

#: (cause, remedy) -> (probability it removes the fault, the part of it it removes else) in
#: the simulator.
EFFICACY: Final[dict[tuple[str, str], tuple[float, float]]] = {
    ("processing", "increase_batch_size"): (0.45, 0.20),
    ("processing", "optimize_mps_usage"): (0.75, 0.30),
    ("processing", "improve_caching"): (0.60, 0.30),
    ("network", "reduce_payload_size"): (0.50, 0.30),
    ("network", "use_compression"): (0.80, 0.40),
    ("network", "optimize_routes"): (0.35, 0.20),
    ("database", "index_optimization"): (0.50, 0.30),
    ("database", "query_tuning"): (0.65, 0.30),
    ("database", "connection_pool"): (0.85, 0.40),
}
#: A level-1 fault adds this much latency to its component (ms): p95 goes far past 500 ms.
FAULT_MS: Final[float] = 1.1 * DetectionConfig().latency.fire
#: Rare latency spikes: probability per point and the Pareto shape of their size.
SPIKE_P: Final[float] = 0.004
SPIKE_SHAPE: Final[float] = 2.5


def _p95(view: SeriesView) -> float | None:
    return view.p95("latency_ms")


class Profile:
    """The simulated service's latency (see the module docstring)."""

    efficacy = EFFICACY

    def baseline(self, scale: float, jitter: Callable[[float], float]) -> dict[str, float]:
        return {
            "processing": jitter(60.0),
            "network": jitter(30.0),
            "database": jitter(35.0),
            "payload_bytes": jitter(20e3),
            "db_connections": jitter(12.0),
        }

    def emit(
        self, base: Mapping[str, float], load: Array, levels: Levels, rng: np.random.Generator,
        target_rps: float, rate: float,
    ) -> dict[str, Array]:  # fmt: skip
        n, ln = load.size, rng.lognormal

        def part(level: Array | float, cause: str, sigma: float) -> Array:
            extra = levels(cause) * FAULT_MS * ln(0.0, 0.2, n)
            return level * ln(0.0, sigma, n) + extra

        processing = part(base["processing"] * load, "processing", 0.3)
        network = part(base["network"], "network", 0.35)
        db = part(base["database"], "database", 0.35)
        body = processing + network + db + 5.0
        spikes = rng.random(n) < SPIKE_P
        body = body + spikes * body * rng.pareto(SPIKE_SHAPE, n) * 2.0
        payload = base["payload_bytes"] * ln(0.0, 0.3, n) * (1 + 4 * levels("network"))
        connections = rng.poisson(base["db_connections"] * load) + 40 * levels("database")
        return {
            "latency_ms": body,
            "latency_processing_ms": processing,
            "latency_network_ms": network,
            "latency_db_ms": db,
            "payload_bytes": payload,
            "db_connections_in_use": np.round(connections),
        }


class Synthetic:
    """Seeded latency windows (see :mod:`perfloop.models.synthetic`)."""

    base = (25.0, 200.0)

    def window(self, parts: list[float], rng: random.Random) -> dict[str, float]:
        return {
            "latency_processing_ms": parts[0],
            "latency_network_ms": parts[1],
            "latency_db_ms": parts[2],
            "latency_ms": sum(parts) + rng.uniform(10, 40),
            "payload_bytes": rng.uniform(1e3, 1e5),
            "db_connections_in_use": rng.uniform(5, 50),
        }

    def quiet(self, rng: random.Random) -> dict[str, float]:
        return {"latency_ms": rng.uniform(50, 400)}


class Latency:
    """The latency area (see the module docstring)."""

    name = "latency"
    causes: Mapping[str, tuple[Remedy, ...]] = REMEDIES
    triggers = (Trigger("latency_ms.p95", "latency", ("latency_ms",), _p95, SAMPLE_SHIFT),)
    cause_metrics = (
        "latency_processing_ms",
        "latency_network_ms",
        "latency_db_ms",
        "payload_bytes",
        "db_connections_in_use",
    )
    signals = ("latency_ms", *cause_metrics)
    components: Mapping[str, str] = {
        "processing": "latency_processing_ms",
        "network": "latency_network_ms",
        "database": "latency_db_ms",
    }
    profile = Profile()
    synthetic = Synthetic()

    def read(self, view: SeriesView) -> dict[str, float | None]:
        return {"latency_ms": _p95(view), **{m: view.mean(m) for m in self.cause_metrics}}

    def whole(self, view: SeriesView, readings: Mapping[str, float | None]) -> float | None:
        return view.mean("latency_ms")


AREA: Final[Area] = Latency()
