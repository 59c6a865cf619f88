"""The trigger signals of one closed window: what detection compares with its rules and what
verification observes.

Each registered area names its triggers (:class:`~perfloop.areas.base.Trigger`): memory's
``memory_bytes.max``, latency's ``latency_ms.p95``, throughput's
``throughput_rps.mean_ratio``, cache's ``cache_hit_rate``, attribution's three
``attribution_*.mean``. A window is read through one :class:`~perfloop.areas.view.SeriesView`
(labelled series combined, the service's configured rules), the same view diagnosis reads.

>>> from perfloop.schemas.messages import SeriesAggregate, WindowAggregate
>>> def s(metric, v):
...     return SeriesAggregate(metric=metric, count=1, sum=v, min=v, max=v, mean=v, last=v,
...                            p50=v, p95=v, p99=v, sample=[v])
>>> agg = WindowAggregate(window_id="api:0", service="api", start=1.7e9, end=1.7e9 + 10,
...                       series=[s("cache_hits", 79.0), s("cache_misses", 21.0),
...                               s("latency_ms", 300.0)])
>>> [(x.area, x.name, x.value) for x in window_signals(agg, DetectionConfig())]
[('latency', 'latency_ms.p95', 300.0), ('cache', 'cache_hit_rate', 0.79)]
>>> observed = window_observations(agg, DetectionConfig())
>>> observed["latency_ms.p95"].sample, observed["cache_hit_rate"].counts
([300.0], (79.0, 21.0))
"""

from __future__ import annotations

from dataclasses import dataclass

from perfloop.areas import registry
from perfloop.areas.base import Trigger
from perfloop.areas.view import SeriesView
from perfloop.schemas.config import DetectionConfig, ThresholdRule
from perfloop.schemas.messages import WindowAggregate
from perfloop.streams.verify import WindowObservation


@dataclass(frozen=True, slots=True)
class Signal:
    """One trigger's value in one window, with the rule it is held to."""

    area: str
    trigger: Trigger
    value: float
    rule: ThresholdRule

    @property
    def name(self) -> str:
        return self.trigger.name


def view_signals(view: SeriesView) -> list[Signal]:
    """The signals the window of ``view`` carries, area by area."""
    out: list[Signal] = []
    for area in registry.areas():
        for trigger in area.triggers:
            value = trigger.read(view)
            if value is not None:
                out.append(Signal(area.name, trigger, value, trigger.rule_of(view)))
    return out


def window_signals(agg: WindowAggregate, config: DetectionConfig) -> list[Signal]:
    """The signals present in ``agg``; ``config`` is already the service's (``for_service``)."""
    return view_signals(SeriesView(agg, config))


def window_observations(
    window: WindowAggregate, config: DetectionConfig
) -> dict[str, WindowObservation]:
    """signal name -> what the window contributes to verifying a remedy against it."""
    view = SeriesView(window, config)
    return {s.name: s.trigger.test.observe(view, s.trigger) for s in view_signals(view)}
