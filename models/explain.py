"""Summaries of an attribution vector: its top features, entropy and sparsity.

- **entropy**: the Shannon entropy of ``p_i = |a_i| / sum_j |a_j|`` divided by ``log(n)``
  (``n`` features), so it lies in [0, 1]: 0 when one feature carries all the attribution, 1
  when it is spread evenly.
- **sparsity**: the fraction of features whose ``|a_i|`` is below 1 % of the largest
  ``|a_i|``, in [0, 1]: high when few features matter.

An all-zero attribution explains nothing: its entropy is 1 and its sparsity 0 (the worst
values of both).

>>> attribution_entropy({"a": 1.0, "b": 0.0})
0.0
>>> attribution_entropy({"a": 1.0, "b": -1.0})
1.0
>>> attribution_sparsity({"a": 1.0, "b": 0.001, "c": 0.5, "d": 0.0})
0.5
>>> [f.name for f in top_features({"a": 1.0, "b": 2.0}, {"a": -3.0, "b": 0.5}, 1)]
['a']
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from perfloop.schemas.messages import FeatureAttribution

SPARSITY_RELATIVE = 0.01


def _finite(v: float) -> float:
    return v if math.isfinite(v) else 0.0


def attribution_entropy(attribution: Mapping[str, float]) -> float:
    """Normalized Shannon entropy of ``|a| / sum|a|`` in [0, 1] (1 for an all-zero vector)."""
    mags = [abs(_finite(v)) for v in attribution.values()]
    total = sum(mags)
    if len(mags) < 2 or total <= 0:
        return 1.0 if total <= 0 else 0.0
    h = -sum((m / total) * math.log(m / total) for m in mags if m > 0)
    return min(1.0, max(0.0, h / math.log(len(mags))))


def attribution_sparsity(attribution: Mapping[str, float]) -> float:
    """Fraction of features with ``|a|`` below 1 % of the largest (0 for an all-zero vector)."""
    mags = [abs(_finite(v)) for v in attribution.values()]
    if not mags or max(mags) <= 0:
        return 0.0
    cut = SPARSITY_RELATIVE * max(mags)
    return sum(1 for m in mags if m < cut) / len(mags)


def top_features(
    features: Mapping[str, float], attribution: Mapping[str, float], k: int
) -> list[FeatureAttribution]:
    """The ``k`` features with the largest ``|attribution|`` (ties keep feature order)."""
    items = list(attribution.items())
    order = sorted(range(len(items)), key=lambda i: -abs(_finite(items[i][1])))
    out = []
    for i in order[:k]:
        name, value = items[i]
        out.append(
            FeatureAttribution(
                name=name,
                value=_finite(float(features.get(name, 0.0))),
                attribution=_finite(value),
            )
        )
    return out
