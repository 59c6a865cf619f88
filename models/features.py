"""Features for the cause classifiers, from a service's recent window aggregates.

``extract_features(area, history, detection)`` takes the breaching service's windows, oldest
first, the last one being the breach window, and returns a flat ``dict[str, float]`` whose
keys are always :func:`feature_names` ``(area)``, in that order:

- for each diagnosis signal ``s`` of the area (its ``signals``, read by its ``read`` through
  the same :class:`~perfloop.areas.view.SeriesView` detection uses, with the service's
  configured rules):
  ``s`` (level in the breach window), ``s_delta`` (breach window minus the window before),
  ``s_growth`` (relative change per window from the oldest window to the breach window,
  clipped to [-10, 10]) and ``s_missing`` (1 when the breach window lacks it);
- for each cause ``c``: ``share_c`` and ``share_c_delta`` as above, where the share is the
  cause's component (the area's ``components``) over the area's ``whole``;
- for each *other* registered area ``o``: ``ctx_o``, how close ``o`` is to firing (the
  greatest :func:`~perfloop.areas.base.severity` of its triggers: 1 at a fire threshold) and
  ``ctx_o_missing``.

Missing values are imputed (carried forward from earlier windows, else back from later
ones, else 0) and flagged; a share whose whole is missing or zero is 0. Every value is
finite: nothing non-finite ever reaches a model.

>>> names = feature_names("memory")
>>> names[:4]
('memory_bytes', 'memory_bytes_delta', 'memory_bytes_growth', 'memory_bytes_missing')
>>> x = extract_features("memory", [])
>>> list(x) == list(names) and x["memory_bytes_missing"] == 1.0
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import cache

from perfloop.areas import registry
from perfloop.areas.base import Area, severity
from perfloop.areas.view import SeriesView
from perfloop.schemas.config import DetectionConfig
from perfloop.schemas.messages import WindowAggregate

_DEFAULT = DetectionConfig()

#: Bounds of every feature value (keeps extreme inputs from swamping a model).
GROWTH_LIMIT = 10.0
VALUE_LIMIT = 1e15


def feature_names(area: str) -> tuple[str, ...]:
    """The fixed, ordered feature keys of ``area`` (with the areas registered now)."""
    return _feature_names(area, registry.generation())


@cache
def _feature_names(area: str, generation: int) -> tuple[str, ...]:
    found = registry.get(area)
    names: list[str] = []
    for s in found.signals:
        names += [s, f"{s}_delta", f"{s}_growth", f"{s}_missing"]
    for c in found.causes:
        names += [f"share_{c}", f"share_{c}_delta"]
    for other in registry.names():
        if other != area:
            names += [f"ctx_{other}", f"ctx_{other}_missing"]
    return tuple(names)


def _clean(value: float, limit: float = VALUE_LIMIT) -> float:
    if not math.isfinite(value):
        return 0.0
    return max(-limit, min(limit, value))


def _impute(series: Sequence[float | None]) -> list[float]:
    """Carry values forward, then the first value back; 0 when there is none at all."""
    out: list[float | None] = []
    last: float | None = None
    for v in series:
        if v is not None and math.isfinite(v):
            last = v
        out.append(last)
    first = next((v for v in out if v is not None), 0.0)
    return [first if v is None else v for v in out]


def _growth(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    base, now = values[0], values[-1]
    scale = max(abs(base), 1e-9)
    return _clean((now - base) / scale / (len(values) - 1), GROWTH_LIMIT)


def _level_features(name: str, raw: Sequence[float | None]) -> dict[str, float]:
    values = _impute(raw)
    missing = not raw or raw[-1] is None or not math.isfinite(raw[-1])
    now = values[-1] if values else 0.0
    delta = now - values[-2] if len(values) >= 2 else 0.0
    return {
        name: _clean(now),
        f"{name}_delta": _clean(delta),
        f"{name}_growth": _growth(values),
        f"{name}_missing": 1.0 if missing else 0.0,
    }


def breakdown(
    area: Area, view: SeriesView, readings: Mapping[str, float | None]
) -> tuple[float | None, dict[str, float | None]]:
    """The whole and each cause's component: the area's ``whole`` when the window carries
    it, else the sum of the components present."""
    parts = {cause: readings[name] for cause, name in area.components.items()}
    whole = area.whole(view, readings)
    present = [v for v in parts.values() if v is not None]
    if (whole is None or whole <= 0) and present:
        whole = sum(present)
    return whole, parts


def _shares(area: Area, view: SeriesView, readings: Mapping[str, float | None]) -> dict[str, float]:
    whole, parts = breakdown(area, view, readings)
    if whole is None or not whole > 0:
        return dict.fromkeys(parts, 0.0)
    return {c: _clean(0.0 if v is None else v / whole, GROWTH_LIMIT) for c, v in parts.items()}


def context(area: Area, view: SeriesView) -> float | None:
    """How close ``area`` is to firing in the window: its triggers' greatest severity."""
    found = [
        severity(value, t.rule_of(view))
        for t in area.triggers
        if (value := t.read(view)) is not None
    ]
    return max(found) if found else None


def extract_features(
    area: str, history: Sequence[WindowAggregate], detection: DetectionConfig | None = None
) -> dict[str, float]:
    """The features of ``area`` from ``history`` (oldest first; the last is the breach
    window), read with ``detection`` (the service's configuration; the defaults if none).

    An empty history gives every level 0 and every ``_missing`` flag 1.
    """
    found = registry.get(area)
    config = _DEFAULT if detection is None else detection
    views = [SeriesView(w, config) for w in history]
    readings = [found.read(v) for v in views]
    x: dict[str, float] = {}
    for s in found.signals:
        x.update(_level_features(s, [r[s] for r in readings]))
    causes = tuple(found.causes)
    now = _shares(found, views[-1], readings[-1]) if views else dict.fromkeys(causes, 0.0)
    before = _shares(found, views[-2], readings[-2]) if len(views) >= 2 else now
    for c in causes:
        x[f"share_{c}"] = now[c]
        x[f"share_{c}_delta"] = now[c] - before[c]
    for other in registry.areas():
        if other is found:
            continue
        value = context(other, views[-1]) if views else None
        x[f"ctx_{other.name}"] = 0.0 if value is None else _clean(value)
        x[f"ctx_{other.name}_missing"] = 1.0 if value is None else 0.0
    return x


def conform(area: str, features: Mapping[str, float]) -> dict[str, float]:
    """``features`` on exactly :func:`feature_names` ``(area)``: unknown keys dropped, missing
    or non-finite values set to 0.

    >>> conform("cache", {"hit_rate": float("nan"), "bogus": 3.0})["hit_rate"]
    0.0
    """
    out: dict[str, float] = {}
    for name in feature_names(area):
        try:
            value = float(features.get(name, 0.0))
        except (TypeError, ValueError):
            value = 0.0
        out[name] = _clean(value)
    return out
