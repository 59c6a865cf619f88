"""Client-side batching of metric points into columnar batch messages.

Points are grouped by (service, metric, labels); a group becomes one
:class:`perfloop.schemas.messages.MetricBatch`-shaped message when it holds ``batch_size`` points,
or when its first point has waited ``linger_s`` seconds. Nothing here knows about Kafka.

>>> b = MetricBatcher(batch_size=2, linger_s=5.0)
>>> b.add("api", "latency_ms", 12.0, 1_700_000_000.0, {}, now=0.0)
[]
>>> b.add("web", "latency_ms", 30.0, 1_700_000_000.0, {}, now=0.0)
[]
>>> b.add("api", "latency_ms", 14.0, 1_700_000_001.0, {}, now=1.0)
[{'service': 'api', 'metric': 'latency_ms', 'labels': {}, 'ts': [1700000000.0, 1700000001.0], \
'values': [12.0, 14.0]}]
>>> b.due(now=4.0), b.pending
([], 1)
>>> [batch["service"] for batch in b.due(now=5.0)], b.pending
(['web'], 0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perfloop.schemas.messages import MAX_BATCH_POINTS

SeriesKey = tuple[str, str, tuple[tuple[str, str], ...]]


@dataclass
class _Series:
    since: float
    ts: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


class MetricBatcher:
    """Collects points per series and hands back the batches that are ready."""

    def __init__(self, batch_size: int = 500, linger_s: float = 1.0) -> None:
        if not 1 <= batch_size <= MAX_BATCH_POINTS:
            raise ValueError(f"batch_size: {batch_size} is not between 1 and {MAX_BATCH_POINTS}")
        if not linger_s >= 0:
            raise ValueError(f"linger_s: {linger_s} must not be negative")
        self.batch_size = batch_size
        self.linger_s = linger_s
        self._series: dict[SeriesKey, _Series] = {}

    @property
    def pending(self) -> int:
        """Points waiting in unfinished batches."""
        return sum(len(s.ts) for s in self._series.values())

    def add(
        self,
        service: str,
        metric: str,
        value: float,
        ts: float,
        labels: dict[str, str],
        now: float,
    ) -> list[dict[str, Any]]:
        """Add one point; return the batch it completed, if it completed one."""
        key = (service, metric, tuple(sorted(labels.items())))
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(since=now)
        series.ts.append(float(ts))
        series.values.append(float(value))
        if len(series.ts) >= self.batch_size:
            del self._series[key]
            return [_batch(key, series)]
        return []

    def due(self, now: float) -> list[dict[str, Any]]:
        """The batches whose first point has waited ``linger_s`` seconds or more."""
        ready = [key for key, s in self._series.items() if now - s.since >= self.linger_s]
        return [_batch(key, self._series.pop(key)) for key in ready]

    def drain(self) -> list[dict[str, Any]]:
        """Every unfinished batch, now."""
        batches = [_batch(key, series) for key, series in self._series.items()]
        self._series.clear()
        return batches


def _batch(key: SeriesKey, series: _Series) -> dict[str, Any]:
    service, metric, labels = key
    return {
        "service": service,
        "metric": metric,
        "labels": dict(labels),
        "ts": series.ts,
        "values": series.values,
    }
