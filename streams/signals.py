"""The area signals of one closed window: the numbers the detection rules compare.

Per service and window:

- memory: ``memory_bytes.max`` - the greatest ``memory_bytes``;
- latency: ``latency_ms.p95`` - the 95th percentile of ``latency_ms``;
- throughput: ``throughput_rps.mean_ratio`` - the mean of ``throughput_rps`` over the target
  rate (``throughput_target_rps`` or the service's override; no target, no signal);
- cache: ``cache_hit_rate`` - sum(cache_hits) / (sum(cache_hits) + sum(cache_misses)), only when
  there were at least ``cache_min_requests`` requests;
- attribution: ``attribution_entropy.mean``, ``attribution_sparsity.mean`` and
  ``attribution_accuracy.mean``, each with its own rule.

A metric is read from its unlabelled series when the window has one; otherwise its labelled
series are combined: max of maxima, max of p95s (the worst label set), sum of means (label
sets split the traffic), sums of sums, and count-weighted means for the attribution measures.

>>> from perfloop.schemas.messages import AreaName, SeriesAggregate, WindowAggregate
>>> def s(metric, v):
...     return SeriesAggregate(metric=metric, count=1, sum=v, min=v, max=v, mean=v, last=v,
...                            p50=v, p95=v, p99=v)
>>> agg = WindowAggregate(window_id="api:0", service="api", start=1.7e9, end=1.7e9 + 10,
...                       series=[s("cache_hits", 79.0), s("cache_misses", 21.0)])
>>> [(x.area, x.name, x.value) for x in window_signals(agg, DetectionConfig())]
[('cache', 'cache_hit_rate', 0.79)]
"""

from __future__ import annotations

from dataclasses import dataclass

from perfloop.schemas.config import DetectionConfig, ThresholdRule
from perfloop.schemas.messages import AreaName, SeriesAggregate, WindowAggregate


@dataclass(frozen=True, slots=True)
class Signal:
    """One area signal of one window, with the rule it is held to."""

    area: AreaName
    name: str
    value: float
    rule: ThresholdRule


def series_by_metric(agg: WindowAggregate) -> dict[str, list[SeriesAggregate]]:
    """Each metric's series to read: its unlabelled one when the window has it, otherwise all
    its labelled ones."""
    found: dict[str, list[SeriesAggregate]] = {}
    for s in agg.series:
        group = found.get(s.metric)
        if group is None:
            found[s.metric] = [s]
        else:
            group.append(s)
    if len(found) == len(agg.series):  # one series a metric: nothing to choose
        return found
    return {
        metric: ([s for s in group if not s.labels] or group) if len(group) > 1 else group
        for metric, group in found.items()
    }


def _max(found: list[SeriesAggregate] | None) -> float | None:
    return max(s.max for s in found) if found else None


def _p95(found: list[SeriesAggregate] | None) -> float | None:
    return max(s.p95 for s in found) if found else None


def _sum_of_means(found: list[SeriesAggregate] | None) -> float | None:
    return sum(s.mean for s in found) if found else None


def _sum(found: list[SeriesAggregate] | None) -> float | None:
    return sum(s.sum for s in found) if found else None


def _mean(found: list[SeriesAggregate] | None) -> float | None:
    if not found:
        return None
    return sum(s.sum for s in found) / sum(s.count for s in found)


def window_signals(agg: WindowAggregate, config: DetectionConfig) -> list[Signal]:
    """The signals present in ``agg``; ``config`` is already the service's (``for_service``)."""
    return signals_of(series_by_metric(agg), config)


def signals_of(
    by_metric: dict[str, list[SeriesAggregate]], config: DetectionConfig
) -> list[Signal]:
    """:func:`window_signals` from the window's :func:`series_by_metric`."""
    out: list[Signal] = []
    series = by_metric.get
    memory = _max(series("memory_bytes"))
    if memory is not None:
        out.append(Signal("memory", "memory_bytes.max", memory, config.memory))
    latency = _p95(series("latency_ms"))
    if latency is not None:
        out.append(Signal("latency", "latency_ms.p95", latency, config.latency))
    target = config.throughput_target_rps
    rate = _sum_of_means(series("throughput_rps"))
    if target is not None and rate is not None:
        out.append(
            Signal("throughput", "throughput_rps.mean_ratio", rate / target, config.throughput)
        )
    hits, misses = _sum(series("cache_hits")), _sum(series("cache_misses"))
    if hits is not None or misses is not None:
        requests = (hits or 0.0) + (misses or 0.0)
        if requests > 0 and requests >= config.cache_min_requests:
            out.append(Signal("cache", "cache_hit_rate", (hits or 0.0) / requests, config.cache))
    for measure, rule in (  # each attribution measure has its own rule
        ("attribution_entropy", config.attribution_entropy),
        ("attribution_sparsity", config.attribution_sparsity),
        ("attribution_accuracy", config.attribution_accuracy),
    ):
        value = _mean(series(measure))
        if value is not None:
            out.append(Signal("attribution", f"{measure}.mean", value, rule))
    return out
