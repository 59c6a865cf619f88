"""Seeded synthetic window histories with a known cause, for tests and benchmarks.

In every area the three causes' components start at random levels (so the largest share is
often *not* the cause) and, over the history, the true cause's component grows clearly
faster than the others: the cause is told by growth rates more than by shares, so the rule
prior alone is not enough and a model has to learn.

``concept=1`` is an abrupt concept drift: the instrumentation changed and each cause now
shows in the *next* cause's series (in flowchart order), as if the series had been renamed.

>>> import random
>>> from perfloop.models.features import extract_features
>>> history = synthetic_history("latency", "network", random.Random(1))
>>> len(history), history[-1].service
(4, 'svc')
>>> x = extract_features("latency", history, DETECTION)
>>> parts = ("processing", "network", "db")
>>> max(parts, key=lambda p: x[f"latency_{p}_ms_growth"])
'network'
"""

from __future__ import annotations

import random

from perfloop.areas import registry
from perfloop.areas.base import SYNTHETIC_COUNT
from perfloop.schemas.config import DetectionConfig
from perfloop.schemas.messages import Breach, SeriesAggregate, WindowAggregate
from perfloop.schemas.vocabulary import causes_of

START_TS = 1_700_000_000.0
COUNT = SYNTHETIC_COUNT
#: The detection configuration synthetic services run under: the default rules, and a
#: throughput target below every synthetic rate (so throughput is read, and healthy).
DETECTION = DetectionConfig(throughput_target_rps=50.0)
#: Growth per window of the true cause's component, and of the others'.
CAUSE_GROWTH = (0.12, 0.30)
OTHER_GROWTH = (-0.06, 0.04)


def _series(metric: str, mean: float, spread: float = 0.1) -> SeriesAggregate:
    mean = max(0.0, mean)
    return SeriesAggregate(
        metric=metric,
        count=COUNT,
        sum=mean * COUNT,
        min=mean * (1 - spread),
        max=mean * (1 + spread),
        mean=mean,
        last=mean,
        p50=mean,
        p95=mean * (1 + 0.8 * spread),
        p99=mean * (1 + 0.9 * spread),
    )


def _context(area: str, rng: random.Random) -> dict[str, float]:
    """The other areas' trigger series, at unremarkable levels (each area's ``quiet``)."""
    return {
        k: v for a in registry.areas() if a.name != area for k, v in a.synthetic.quiet(rng).items()
    }


def synthetic_history(
    area: str,
    cause: str,
    rng: random.Random,
    *,
    windows: int = 4,
    concept: int = 0,
    drop: float = 0.0,
    service: str = "svc",
    start: float = START_TS,
    length_s: float = 10.0,
) -> list[WindowAggregate]:
    """``windows`` consecutive windows (oldest first) of a service whose ``area`` breaches
    because of ``cause``; each series is left out with probability ``drop``."""
    shape = registry.get(area).synthetic
    causes = causes_of(area)
    grows = causes[(causes.index(cause) + concept) % len(causes)]
    base = [rng.uniform(*shape.base) for _ in causes]
    rate = [rng.uniform(*(CAUSE_GROWTH if c == grows else OTHER_GROWTH)) for c in causes]
    out: list[WindowAggregate] = []
    for i in range(windows):
        parts = [b * (1 + g) ** i * rng.gauss(1.0, 0.02) for b, g in zip(base, rate, strict=True)]
        values = {**_context(area, rng), **shape.window(parts, rng)}
        series = [
            _series(metric, value)
            for metric, value in values.items()
            if drop <= 0 or rng.random() >= drop
        ]
        t0 = start + i * length_s
        out.append(
            WindowAggregate(
                window_id=f"{service}:{t0:.0f}",
                service=service,
                start=t0,
                end=t0 + length_s,
                series=series,
            )
        )
    return out


def labelled_stream(
    area: str, n: int, seed: int = 0, drift_at: int | None = None, drop: float = 0.0
) -> list[tuple[dict[str, float], str]]:
    """``n`` (features, cause) pairs of ``area``, causes drawn uniformly; from label
    ``drift_at`` on, the stream follows ``concept=1``."""
    from perfloop.models.features import extract_features

    rng = random.Random(seed)
    causes = causes_of(area)
    out = []
    for i in range(n):
        cause = rng.choice(causes)
        concept = 1 if drift_at is not None and i >= drift_at else 0
        history = synthetic_history(area, cause, rng, concept=concept, drop=drop)
        out.append((extract_features(area, history, DETECTION), cause))
    return out


def synthetic_breach(area: str, history: list[WindowAggregate], breach_id: str = "b-1") -> Breach:
    """A breach of ``area`` in the last window of ``history`` (for tests and benchmarks)."""
    last = history[-1]
    return Breach(
        breach_id=breach_id,
        service=last.service,
        area=area,
        signal=registry.get(area).triggers[0].name,
        observed=1.0,
        threshold=0.5,
        direction="above",
        window_start=last.start,
        window_end=last.end,
        first_window_start=history[0].start,
        windows=len(history),
    )
