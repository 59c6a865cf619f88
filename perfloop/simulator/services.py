"""One simulated service: every metric of the vocabulary, from its baseline, its load and the
levels of the faults acting on it.

Healthy, a service sits clearly inside the default thresholds: memory in use around 20 GB
(fires above 33.6 GB), p95 latency around 250 ms (500 ms), throughput about 1.4 times its
target (at least 1.1 times at the load pattern's trough), a cache hit rate around 94 %
(80 %), attribution entropy about 0.55 (0.85), sparsity 0.42 (0.20) and accuracy 0.91 (0.80).

Load follows a sinusoid (the daily pattern, with the scenario's period) and every series has
noise; latency has a lognormal body and rare Pareto-tailed spikes. A fault of level 1 (see
:mod:`perfloop.simulator.faults`) pushes its area's trigger clearly past the threshold, and
does it through its cause's component, which then has the largest share of the whole
(:mod:`perfloop.models.signals`): memory/cache grows ``memory_cache_bytes``, latency/database grows
``latency_db_ms`` and ``db_connections_in_use``, cache/expiry grows ``cache_expirations``,
and so on.

>>> import numpy as np
>>> from perfloop.simulator.scenario import ServiceSpec
>>> svc = ServiceModel(ServiceSpec(name="api"), np.random.default_rng(0), rate=10.0)
>>> out = svc.emit(np.arange(0.0, 1.0, 0.1), load=np.ones(10), levels={})
>>> sorted(out) == sorted(METRICS)
True
>>> bool(out["memory_bytes"].max() < 25e9)
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

import numpy as np
import numpy.typing as npt

from perfloop.schemas.config import DetectionConfig
from perfloop.schemas.vocabulary import CAUSE_METRICS, TRIGGER_METRICS
from perfloop.simulator.scenario import ServiceSpec

Array = npt.NDArray[np.float64]
#: ``"area/cause"`` -> that fault's level at each time of the batch.
_Levels = Callable[[str], Array]

#: Every metric a simulated service emits: the whole vocabulary, in a fixed order.
METRICS: Final[tuple[str, ...]] = tuple(
    dict.fromkeys(
        name for area in TRIGGER_METRICS for name in (*TRIGGER_METRICS[area], *CAUSE_METRICS[area])
    )
)

_DEFAULTS = DetectionConfig()
MEMORY_FIRE: Final[float] = _DEFAULTS.memory.fire
LATENCY_FIRE: Final[float] = _DEFAULTS.latency.fire

#: Healthy throughput over the target, before the load pattern.
HEADROOM: Final[float] = 1.4
#: A level-1 fault drives memory to this multiple of the memory threshold ...
MEMORY_OVERSHOOT: Final[float] = 1.2
#: ... and adds this much latency to its component (ms), which puts p95 far past 500 ms.
LATENCY_FAULT_MS: Final[float] = 1.1 * LATENCY_FIRE
#: A level-1 throughput fault divides the rate by (1 + this).
THROUGHPUT_SLOWDOWN: Final[float] = 0.9
#: A level-1 cache fault turns this fraction of the requests into misses of its kind.
CACHE_FAULT_MISS: Final[float] = 0.25
#: Rare latency spikes: probability per point and the Pareto shape of their size.
SPIKE_P: Final[float] = 0.004
SPIKE_SHAPE: Final[float] = 2.5


class ServiceModel:
    """The baseline of one service (drawn once from ``rng``) and its metric generator."""

    def __init__(self, spec: ServiceSpec, rng: np.random.Generator, rate: float) -> None:
        self.spec = spec
        self.name = spec.name
        self.rng = rng
        self.rate = rate
        self.phase = float(rng.uniform(0, 2 * np.pi))

        def jitter(x: float) -> float:
            return float(x * rng.uniform(0.9, 1.1))

        s = spec.scale
        self.cache_bytes = jitter(6e9 * s)
        self.model_bytes = jitter(7e9 * s)
        self.workers_bytes = jitter(4e9 * s)
        self.other_bytes = jitter(3e9 * s)
        healthy = self.cache_bytes + self.model_bytes + self.workers_bytes + self.other_bytes
        self.memory_fault_bytes = MEMORY_OVERSHOOT * MEMORY_FIRE - healthy
        self.queue_depth = jitter(20.0)
        self.workers = round(jitter(8.0))
        self.processing_ms = jitter(60.0)
        self.network_ms = jitter(30.0)
        self.db_ms = jitter(35.0)
        self.payload_bytes = jitter(20e3)
        self.db_connections = jitter(12.0)
        self.cpu = jitter(0.35)
        self.io = jitter(0.10)
        self.pressure = jitter(0.22)
        self.gc_ms = jitter(6.0)
        self.requests_per_s = jitter(400.0 * s)
        self.evict, self.expire, self.cold = jitter(0.012), jitter(0.018), jitter(0.025)
        self.keys = jitter(50_000 * s)
        self.capacity_bytes = jitter(2e9 * s)
        self.entropy, self.sparsity = jitter(0.55), jitter(0.42)
        self.accuracy = 1.0 - jitter(0.09)
        self.features = jitter(40.0)
        self.calibration = jitter(0.03)

    def emit(self, t: Array, load: Array, levels: Mapping[str, Array]) -> dict[str, Array]:
        """Every metric at simulated times ``t``, under ``load`` (1 = average) and fault
        ``levels`` (``"area/cause"`` -> level at each time; absent means 0)."""
        n = t.size
        zero = np.zeros(n)

        def lv(key: str) -> Array:
            return levels.get(key, zero)

        out: dict[str, Array] = {}
        out.update(self._memory(n, load, lv))
        out.update(self._latency(n, load, lv))
        out.update(self._throughput(n, load, lv))
        out.update(self._cache(n, load, lv))
        out.update(self._attribution(n, lv))
        return {name: np.maximum(out[name], 0.0) for name in METRICS}

    def _noise(self, n: int, cv: float) -> Array:
        return self.rng.normal(1.0, cv, n)

    def _memory(self, n: int, load: Array, lv: _Levels) -> dict[str, Array]:
        fault = self.memory_fault_bytes
        cache = self.cache_bytes * (0.9 + 0.1 * load) * self._noise(n, 0.02)
        cache = cache + lv("memory/cache") * fault
        model = self.model_bytes * self._noise(n, 0.01) + lv("memory/model") * fault
        workers = self.workers_bytes * load * self._noise(n, 0.03)
        workers = workers + lv("memory/workers") * fault
        other = self.other_bytes * self._noise(n, 0.03)
        queue = self.rng.poisson(self.queue_depth * load * (1 + 4 * lv("memory/workers")))
        count = self.workers + np.round(6 * lv("memory/workers"))
        return {
            "memory_bytes": cache + model + workers + other,
            "memory_cache_bytes": cache,
            "memory_model_bytes": model,
            "memory_workers_bytes": workers,
            "queue_depth": queue.astype(np.float64),
            "worker_count": count.astype(np.float64),
        }

    def _latency(self, n: int, load: Array, lv: _Levels) -> dict[str, Array]:
        ln = self.rng.lognormal

        def part(base: Array | float, key: str, sigma: float) -> Array:
            extra = lv(key) * LATENCY_FAULT_MS * ln(0.0, 0.2, n)
            return base * ln(0.0, sigma, n) + extra

        processing = part(self.processing_ms * load, "latency/processing", 0.3)
        network = part(self.network_ms, "latency/network", 0.35)
        db = part(self.db_ms, "latency/database", 0.35)
        body = processing + network + db + 5.0
        spikes = self.rng.random(n) < SPIKE_P
        body = body + spikes * body * self.rng.pareto(SPIKE_SHAPE, n) * 2.0
        payload = self.payload_bytes * ln(0.0, 0.3, n) * (1 + 4 * lv("latency/network"))
        connections = self.rng.poisson(self.db_connections * load) + 40 * lv("latency/database")
        return {
            "latency_ms": body,
            "latency_processing_ms": processing,
            "latency_network_ms": network,
            "latency_db_ms": db,
            "payload_bytes": payload,
            "db_connections_in_use": np.round(connections),
        }

    def _throughput(self, n: int, load: Array, lv: _Levels) -> dict[str, Array]:
        cpu_f, io_f, mem_f = lv("throughput/cpu"), lv("throughput/io"), lv("throughput/memory")
        slowdown = 1 + THROUGHPUT_SLOWDOWN * (cpu_f + io_f + mem_f)
        rate = self.spec.throughput_target_rps * HEADROOM * load / slowdown
        noise = self.rng.normal(0.0, 0.015, (3, n))
        return {
            "throughput_rps": rate * self._noise(n, 0.04),
            "cpu_util": np.clip(self.cpu * load + 0.55 * cpu_f + noise[0], 0.0, 1.0),
            "io_wait": np.clip(self.io + 0.6 * io_f + noise[1], 0.0, 1.0),
            "memory_pressure": np.clip(self.pressure + 0.6 * mem_f + noise[2], 0.0, 1.0),
            "gc_pause_ms": self.gc_ms * self.rng.lognormal(0.0, 0.3, n) * (1 + 10 * mem_f),
        }

    def _cache(self, n: int, load: Array, lv: _Levels) -> dict[str, Array]:
        cap, exp, key = lv("cache/capacity"), lv("cache/expiry"), lv("cache/key_space")
        requests = self.requests_per_s * load / self.rate
        f_evict = self.evict + CACHE_FAULT_MISS * cap
        f_expire = self.expire + CACHE_FAULT_MISS * exp
        f_cold = self.cold + CACHE_FAULT_MISS * key
        total = f_evict + f_expire + f_cold
        squeeze = np.maximum(total / 0.95, 1.0)  # misses never exceed 95 % of requests
        f_evict, f_expire, f_cold = f_evict / squeeze, f_expire / squeeze, f_cold / squeeze
        poisson = self.rng.poisson
        evictions = poisson(requests * f_evict).astype(np.float64)
        expirations = poisson(requests * f_expire).astype(np.float64)
        cold = poisson(requests * f_cold).astype(np.float64)
        hits = poisson(requests * (1 - f_evict - f_expire - f_cold)).astype(np.float64)
        fill = 0.7 + 0.3 * np.minimum(cap, 1.0)
        return {
            "cache_hits": hits,
            "cache_misses": evictions + expirations + cold,
            "cache_evictions": evictions,
            "cache_expirations": expirations,
            "cache_keys": np.round(self.keys * (1 + 3 * key) * self._noise(n, 0.01)),
            "cache_size_bytes": self.capacity_bytes * fill * self._noise(n, 0.01),
        }

    def _attribution(self, n: int, lv: _Levels) -> dict[str, Array]:
        ent, spa, acc = (
            lv("attribution/entropy"),
            lv("attribution/sparsity"),
            lv("attribution/accuracy"),
        )
        noise = self.rng.normal(0.0, 1.0, (5, n))
        features = self.features * (1 + 1.5 * ent + 1.0 * spa) + 2.0 * noise[3]
        return {
            "attribution_entropy": np.clip(self.entropy + 0.4 * ent + 0.02 * noise[0], 0, 1),
            "attribution_sparsity": np.clip(self.sparsity - 0.3 * spa + 0.02 * noise[1], 0, 1),
            "attribution_accuracy": np.clip(self.accuracy - 0.18 * acc + 0.01 * noise[2], 0, 1),
            "feature_count": np.round(np.maximum(features, 1.0)),
            "calibration_error": np.clip(
                self.calibration + 0.12 * acc + 0.005 * noise[4], 0.0, 1.0
            ),
        }
