"""The classifier protocol every cause model speaks (river's, plus an explanation).

``learn_one`` changes the model; ``predict_proba_one`` and ``explain_one`` never do.
Probabilities always cover exactly the area's causes and sum to 1, before any learning too.

>>> m = ConstantClassifier(("a", "b"))
>>> m.predict_proba_one({"x": 1.0})
{'a': 0.5, 'b': 0.5}
>>> m.learn_one({"x": 1.0}, "b"); m.predict_proba_one({"x": 1.0})["b"]
0.6666666666666666
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

Features = Mapping[str, float]


@runtime_checkable
class CauseClassifier(Protocol):
    """An online classifier over one area's causes."""

    def learn_one(self, x: Features, y: str) -> None:
        """Update the model with one labelled example."""

    def predict_proba_one(self, x: Features) -> dict[str, float]:
        """The probability of each cause for ``x`` (pure)."""

    def explain_one(self, x: Features) -> dict[str, float]:
        """Each feature's attribution to the predicted cause for ``x`` (pure)."""


def normalize(causes: Sequence[str], scores: Mapping[str, float]) -> dict[str, float]:
    """``scores`` as probabilities over exactly ``causes`` (uniform when they sum to 0).

    >>> normalize(("a", "b", "c"), {"a": 3.0, "z": 9.0, "b": float("nan")})
    {'a': 1.0, 'b': 0.0, 'c': 0.0}
    """
    clean = {}
    for c in causes:
        v = float(scores.get(c, 0.0))
        clean[c] = v if v > 0 and v != float("inf") else 0.0
    total = sum(clean.values())
    if total <= 0:
        return dict.fromkeys(causes, 1.0 / len(causes))
    return {c: v / total for c, v in clean.items()}


class ConstantClassifier:
    """A test double: predicts the smoothed label frequencies, attributes nothing."""

    def __init__(self, causes: Sequence[str]) -> None:
        self.causes = tuple(causes)
        self._counts: Counter[str] = Counter()

    def learn_one(self, x: Features, y: str) -> None:
        self._counts[y] += 1

    def predict_proba_one(self, x: Features) -> dict[str, float]:
        return normalize(self.causes, {c: self._counts[c] + 1.0 for c in self.causes})

    def explain_one(self, x: Features) -> dict[str, float]:
        return dict.fromkeys(x, 0.0)
