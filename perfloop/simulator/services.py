"""One simulated service: every metric of the vocabulary, from its baseline, its load and the
levels of the faults acting on it.

Healthy, a service of the built-in areas sits clearly inside the default thresholds: memory in use
around 20 GB (fires above 33.6 GB), p95 latency around 250 ms (500 ms), throughput about 1.4 times
its target (at least 1.1 times at the load pattern's trough), a cache hit rate around 94 %
(80 %), attribution entropy about 0.55 (0.85), sparsity 0.42 (0.20) and accuracy 0.91 (0.80).

Load follows a sinusoid (the daily pattern, with the scenario's period) and every series has
noise; latency has a lognormal body and rare Pareto-tailed spikes. A fault of level 1 (see
:mod:`perfloop.simulator.faults`) pushes its area's trigger clearly past the threshold, and
does it through its cause's component, which then has the largest share of the whole
(the area's ``components``): memory/cache grows ``memory_cache_bytes``, latency/database
grows ``latency_db_ms`` and ``db_connections_in_use``, cache/expiry grows
``cache_expirations``, and so on. Each area's profile (``profile`` in :mod:`perfloop.areas`)
draws its baseline and emits its metrics; this module runs them in the registry's order.

>>> import numpy as np
>>> from perfloop.simulator.scenario import ServiceSpec
>>> svc = ServiceModel(ServiceSpec(name="api"), np.random.default_rng(0), rate=10.0)
>>> out = svc.emit(np.arange(0.0, 1.0, 0.1), load=np.ones(10), levels={})
>>> sorted(out) == sorted(metrics())
True
>>> bool(out["memory_bytes"].max() < 25e9)
True
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from perfloop.areas import registry
from perfloop.schemas.vocabulary import area_metrics
from perfloop.simulator.scenario import ServiceSpec

Array = npt.NDArray[np.float64]


def metrics() -> tuple[str, ...]:
    """Every metric a simulated service emits: every registered area's, in a fixed order."""
    return tuple(dict.fromkeys(m for a in registry.names() for m in area_metrics(a)))


class ServiceModel:
    """The baseline of one service (drawn once from ``rng``, area by area) and its metric
    generator."""

    def __init__(self, spec: ServiceSpec, rng: np.random.Generator, rate: float) -> None:
        self.spec = spec
        self.name = spec.name
        self.rng = rng
        self.rate = rate
        self.phase = float(rng.uniform(0, 2 * np.pi))

        def jitter(x: float) -> float:
            return float(x * rng.uniform(0.9, 1.1))

        self.areas = registry.areas()
        self.baselines = [a.profile.baseline(spec.scale, jitter) for a in self.areas]

    def emit(self, t: Array, load: Array, levels: Mapping[str, Array]) -> dict[str, Array]:
        """Every metric at simulated times ``t``, under ``load`` (1 = average) and fault
        ``levels`` (``"area/cause"`` -> level at each time; absent means 0)."""
        zero = np.zeros(t.size)
        out: dict[str, Array] = {}
        for area, base in zip(self.areas, self.baselines, strict=True):

            def level(cause: str, area: str = area.name) -> Array:
                return levels.get(f"{area}/{cause}", zero)

            emitted = area.profile.emit(
                base, load, level, self.rng, self.spec.throughput_target_rps, self.rate
            )
            for name in area_metrics(area.name):
                out[name] = np.maximum(emitted[name], 0.0)
        return out
