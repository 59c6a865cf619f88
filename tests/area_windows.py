"""Windows of simulated services for the area tests: the simulator emits the points (each
area's own profile), which are summarised into the window aggregates the stages read."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from perfloop.schemas.messages import SeriesAggregate, WindowAggregate
from perfloop.simulator.scenario import ServiceSpec
from perfloop.simulator.services import ServiceModel

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
    """One simulated service (the simulator's own :class:`ServiceModel`: every registered
    area's profile) with faults ``levels`` (``"area/cause"`` -> level); ``windows(k)`` gives
    its next ``k`` windows."""

    def __init__(self, seed: int = 0, levels: Mapping[str, float] | None = None) -> None:
        spec = ServiceSpec(name="svc", throughput_target_rps=TARGET_RPS)
        self.model = ServiceModel(spec, np.random.default_rng(seed), RATE)
        self.levels = dict(levels or {})
        self.next = 0

    def windows(self, k: int) -> list[WindowAggregate]:
        n = int(LENGTH_S * RATE)
        out = []
        for _ in range(k):
            t = (self.next + np.arange(n) / n) * LENGTH_S
            levels = {key: np.full(n, level) for key, level in self.levels.items()}
            out.append(window(self.next, self.model.emit(t, np.ones(n), levels)))
            self.next += 1
        return out
