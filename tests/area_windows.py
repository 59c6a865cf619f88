"""Windows of simulated services for the area tests: each area's own profile emits the
points, which are summarised into the window aggregates the stages read."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from perfloop.areas import registry
from perfloop.schemas.messages import SeriesAggregate, WindowAggregate

T0 = 1_790_000_000.0
LENGTH_S = 10.0
RATE = 10.0  # points a second of each metric
TARGET_RPS = 200.0


def summarise(metric: str, values: np.ndarray) -> SeriesAggregate:
    """``values`` as a window's series, every point kept as its sample."""
    v = [float(x) for x in values]
    return SeriesAggregate(
        metric=metric, count=len(v), sum=float(np.sum(values)), min=min(v), max=max(v),
        mean=float(np.mean(values)), last=v[-1], p50=float(np.percentile(values, 50)),
        p95=float(np.percentile(values, 95)), p99=float(np.percentile(values, 99)), sample=v,
    )  # fmt: skip


def window(i: int, series: Mapping[str, np.ndarray], service: str = "svc") -> WindowAggregate:
    start = T0 + LENGTH_S * i
    return WindowAggregate(
        window_id=f"{service}:{int(start * 1000)}", service=service, start=start,
        end=start + LENGTH_S, series=[summarise(m, v) for m, v in series.items()],
    )  # fmt: skip


class Simulated:
    """One service of every registered area, with faults ``levels`` (``"area/cause"`` ->
    level); ``windows(k)`` gives its next ``k`` windows."""

    def __init__(self, seed: int = 0, levels: Mapping[str, float] | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        self.levels = dict(levels or {})
        self.areas = registry.areas()

        def jitter(x: float) -> float:
            return float(x * self.rng.uniform(0.9, 1.1))

        self.bases = [a.profile.baseline(1.0, jitter) for a in self.areas]
        self.next = 0

    def windows(self, k: int) -> list[WindowAggregate]:
        n = int(LENGTH_S * RATE)
        out = []
        for _ in range(k):
            series: dict[str, np.ndarray] = {}
            for area, base in zip(self.areas, self.bases, strict=True):

                def level(cause: str, area: str = area.name) -> np.ndarray:
                    return np.full(n, self.levels.get(f"{area}/{cause}", 0.0))

                emitted = area.profile.emit(base, np.ones(n), level, self.rng, TARGET_RPS, RATE)
                series.update({m: np.maximum(v, 0.0) for m, v in emitted.items()})
            out.append(window(self.next, series))
            self.next += 1
        return out
