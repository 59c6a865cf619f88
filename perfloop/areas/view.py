"""One service's window as the areas read it: each metric's series, combined, and the rules.

Detection and diagnosis read a window through the same :class:`SeriesView`. A metric is read
from its unlabelled series when the window has one; otherwise its labelled series are
combined: max of maxima, max of p95s (the worst label set), sum of means (label sets split
the traffic), sums of sums, count-weighted means, and the samples together. The view also
holds the service's detection configuration (its per-service overrides applied), so every
threshold an area reads is the configured one.

>>> from perfloop.schemas.config import DetectionConfig
>>> from perfloop.schemas.messages import SeriesAggregate, WindowAggregate
>>> def s(v, **labels):
...     return SeriesAggregate(metric="latency_ms", labels=labels, count=2, sum=2 * v, min=v,
...                            max=v, mean=v, last=v, p50=v, p95=v, p99=v, sample=[v, v])
>>> w = WindowAggregate(window_id="api:0", service="api", start=0.0, end=10.0,
...                     series=[s(300.0, route="/a"), s(700.0, route="/b")])
>>> view = SeriesView(w, DetectionConfig())
>>> view.p95("latency_ms"), view.mean("latency_ms"), view.total("latency_ms")
(700.0, 500.0, 1000.0)
>>> view.rule("latency").fire, view.p95("memory_bytes") is None
(500.0, True)
"""

from __future__ import annotations

from perfloop.schemas.config import DetectionConfig, ThresholdRule
from perfloop.schemas.messages import SeriesAggregate, WindowAggregate


def series_by_metric(window: WindowAggregate) -> dict[str, list[SeriesAggregate]]:
    """Each metric's series to read: its unlabelled one when the window has it, otherwise all
    its labelled ones."""
    found: dict[str, list[SeriesAggregate]] = {}
    for s in window.series:
        group = found.get(s.metric)
        if group is None:
            found[s.metric] = [s]
        else:
            group.append(s)
    if len(found) == len(window.series):  # one series a metric: nothing to choose
        return found
    return {
        metric: ([s for s in group if not s.labels] or group) if len(group) > 1 else group
        for metric, group in found.items()
    }


class SeriesView:
    """``window`` read metric by metric, with ``config`` (already the service's, see
    :meth:`DetectionConfig.for_service`). Every reader gives ``None`` for a metric the window
    does not carry."""

    __slots__ = ("window", "config", "by_metric")

    def __init__(self, window: WindowAggregate, config: DetectionConfig) -> None:
        self.window = window
        self.config = config
        self.by_metric = series_by_metric(window)

    def has(self, metric: str) -> bool:
        return metric in self.by_metric

    def max(self, metric: str) -> float | None:
        found = self.by_metric.get(metric)
        return max(s.max for s in found) if found else None

    def p95(self, metric: str) -> float | None:
        found = self.by_metric.get(metric)
        return max(s.p95 for s in found) if found else None

    def total(self, metric: str) -> float | None:
        """The sum of the series' means: a rate whose label sets split the traffic."""
        found = self.by_metric.get(metric)
        return sum(s.mean for s in found) if found else None

    def sum(self, metric: str) -> float | None:
        found = self.by_metric.get(metric)
        return sum(s.sum for s in found) if found else None

    def mean(self, metric: str) -> float | None:
        """The mean over every point of the metric's series (count-weighted)."""
        found = self.by_metric.get(metric)
        if not found:
            return None
        return sum(s.sum for s in found) / sum(s.count for s in found)

    def sample(self, metric: str) -> list[float]:
        """The raw points the window kept of the metric (its series' samples together)."""
        return [x for s in self.by_metric.get(metric, ()) for x in s.sample]

    def rule(self, name: str, default: ThresholdRule | None = None) -> ThresholdRule:
        """The configured detection rule ``name`` (see :meth:`DetectionConfig.rule`)."""
        return self.config.rule(name, default)
