"""Builders of windows for tests of detection and of the state kept between windows."""

from __future__ import annotations

from perfloop.schemas.messages import SeriesAggregate, WindowAggregate

T0 = 1_700_000_000.0


def series(
    metric: str,
    value: float,
    *,
    count: int = 10,
    p95: float | None = None,
    labels: dict[str, str] | None = None,
    total: float | None = None,
) -> SeriesAggregate:
    return SeriesAggregate(
        metric=metric,
        labels=labels or {},
        count=count,
        sum=value * count if total is None else total,
        min=value,
        max=value,
        mean=value,
        last=value,
        p50=value,
        p95=value if p95 is None else p95,
        p99=value,
    )


def window(i: int, *items: SeriesAggregate, service: str = "api") -> WindowAggregate:
    start = T0 + 10 * i
    return WindowAggregate(
        window_id=f"{service}:{int(start * 1000)}",
        service=service,
        start=start,
        end=start + 10,
        series=list(items),
    )
