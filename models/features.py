"""Features for the cause classifiers, from a service's recent window aggregates.

``extract_features(area, history)`` takes the breaching service's windows, oldest first, the
last one being the breach window, and returns a flat ``dict[str, float]`` whose keys are
always :func:`feature_names` ``(area)``, in that order:

- for each signal ``s`` of the area (see :data:`perfloop.models.signals.SIGNALS`):
  ``s`` (level in the breach window), ``s_delta`` (breach window minus the window before),
  ``s_growth`` (relative change per window from the oldest window to the breach window,
  clipped to [-10, 10]) and ``s_missing`` (1 when the breach window lacks it);
- for each cause ``c``: ``share_c`` (its component over the whole in the breach window) and
  ``share_c_delta`` (change of that share from the window before);
- for each *other* area ``o``: ``ctx_o`` (:func:`perfloop.models.signals.context_signal`) and
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

from perfloop.models.signals import SIGNALS, breakdown, context_signal, window_signals
from perfloop.schemas.messages import WindowAggregate
from perfloop.schemas.vocabulary import AREAS, causes_of

#: Bounds of every feature value (keeps extreme inputs from swamping a model).
GROWTH_LIMIT = 10.0
VALUE_LIMIT = 1e15


@cache
def feature_names(area: str) -> tuple[str, ...]:
    """The fixed, ordered feature keys of ``area``."""
    causes = causes_of(area)
    names: list[str] = []
    for s in SIGNALS[area]:
        names += [s, f"{s}_delta", f"{s}_growth", f"{s}_missing"]
    for c in causes:
        names += [f"share_{c}", f"share_{c}_delta"]
    for other in AREAS:
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


def _shares(area: str, window: WindowAggregate) -> dict[str, float]:
    whole, parts = breakdown(area, window)
    if whole is None or not whole > 0:
        return dict.fromkeys(parts, 0.0)
    return {c: _clean(0.0 if v is None else v / whole, GROWTH_LIMIT) for c, v in parts.items()}


def extract_features(area: str, history: Sequence[WindowAggregate]) -> dict[str, float]:
    """The features of ``area`` from ``history`` (oldest first; the last is the breach window).

    An empty history gives every level 0 and every ``_missing`` flag 1.
    """
    causes = causes_of(area)
    x: dict[str, float] = {}
    per_window = [window_signals(area, w) for w in history]
    for s in SIGNALS[area]:
        x.update(_level_features(s, [sig[s] for sig in per_window]))
    now = _shares(area, history[-1]) if history else dict.fromkeys(causes, 0.0)
    before = _shares(area, history[-2]) if len(history) >= 2 else now
    for c in causes:
        x[f"share_{c}"] = now[c]
        x[f"share_{c}_delta"] = now[c] - before[c]
    for other in AREAS:
        if other == area:
            continue
        value = context_signal(other, history[-1]) if history else None
        x[f"ctx_{other}"] = 0.0 if value is None else _clean(value)
        x[f"ctx_{other}_missing"] = 1.0 if value is None else 0.0
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
