"""What verification needs from one closed window: each signal's value and raw points.

>>> from perfloop.schemas.config import DetectionConfig
>>> from perfloop.schemas.messages import SeriesAggregate, WindowAggregate
>>> s = SeriesAggregate(metric="latency_ms", count=3, sum=30, min=5, max=15, mean=10,
...                     last=15, p50=10, p95=15, p99=15, sample=[5.0, 10.0, 15.0])
>>> w = WindowAggregate(window_id="api:1", service="api", start=1.7e9, end=1.7e9 + 10,
...                     series=[s])
>>> window_observations(w, DetectionConfig())["latency_ms.p95"].sample
[5.0, 10.0, 15.0]
"""

from __future__ import annotations

from perfloop.schemas.config import DetectionConfig
from perfloop.schemas.messages import WindowAggregate
from perfloop.streams.signals import _sum, series_by_metric, signals_of
from perfloop.streams.verify import WindowObservation


def window_observations(
    window: WindowAggregate, config: DetectionConfig
) -> dict[str, WindowObservation]:
    """signal name -> the window's observation of it (``config`` is the service's)."""
    out: dict[str, WindowObservation] = {}
    series = series_by_metric(window)
    for sig in signals_of(series, config):
        if sig.name == "cache_hit_rate":
            hits = _sum(series.get("cache_hits")) or 0.0
            misses = _sum(series.get("cache_misses")) or 0.0
            out[sig.name] = WindowObservation(window.start, sig.value, [], (hits, misses))
            continue
        metric = sig.name.split(".")[0]
        sample = [x for s in series.get(metric, []) for x in s.sample]
        out[sig.name] = WindowObservation(window.start, sig.value, sample)
    return out
