"""Combining cause classifiers by their running prequential accuracy.

Every label first tests each member on the example, then trains it (test-then-train). A
member's weight is its accuracy over the last ``window`` labels raised to ``power``
(sharpening the preference for the better one); before any label all weigh the same. The
combined probabilities are the weighted mean of the members'.

The ``decider`` of a prediction is the member whose weight is at least ``dominance`` of the
total when there is one (it effectively decided alone), else ``"ensemble"``. A lone decider's
attribution is its own; a combined attribution is the weighted sum of the members'
attributions, each first scaled to an L1 norm of 1 (members attribute in different units).

>>> from perfloop.models.base import ConstantClassifier
>>> members = {"river": ConstantClassifier("ab"), "torch": ConstantClassifier("ab")}
>>> e = AccuracyWeightedEnsemble(members)
>>> e.decide({"x": 1.0})[1]
'ensemble'
>>> e.learn_one({"x": 1.0}, "a"); e.predict_proba_one({"x": 1.0})["a"]
0.6666666666666666
"""

from __future__ import annotations

from collections.abc import Mapping

from perfloop.models.base import CauseClassifier, Features, normalize
from perfloop.models.quality import PrequentialAccuracy

EPSILON = 1e-3


class AccuracyWeightedEnsemble:
    """Members combined by their windowed prequential accuracy (a classifier itself)."""

    def __init__(
        self,
        members: Mapping[str, CauseClassifier],
        window: int = 50,
        power: float = 4.0,
        dominance: float = 0.9,
    ) -> None:
        if not members:
            raise ValueError("members: at least one classifier is needed")
        self.members = dict(members)
        self.window = window
        self.power = power
        self.dominance = dominance
        self.causes: tuple[str, ...] = tuple(getattr(next(iter(members.values())), "causes", ()))
        self.accuracy = {name: PrequentialAccuracy(window) for name in self.members}

    def weights(self) -> dict[str, float]:
        """Each member's share of the vote (they sum to 1)."""
        raw = {}
        for name, acc in self.accuracy.items():
            value = acc.value
            raw[name] = 1.0 if value is None else value**self.power + EPSILON
        total = sum(raw.values())
        return {name: w / total for name, w in raw.items()}

    def learn_one(self, x: Features, y: str) -> None:
        for name, member in self.members.items():
            probs = member.predict_proba_one(x)
            self.accuracy[name].update(max(probs, key=lambda c: probs[c]) == y)
            member.learn_one(x, y)

    def predict_proba_one(self, x: Features) -> dict[str, float]:
        return self.decide(x)[0]

    def explain_one(self, x: Features) -> dict[str, float]:
        return self.decide(x, explain=True)[2]

    def decide(
        self, x: Features, explain: bool = False
    ) -> tuple[dict[str, float], str, dict[str, float]]:
        """(combined probabilities, decider, combined attribution or {} unless ``explain``)."""
        weights = self.weights()
        mixed: dict[str, float] = {}
        for name, member in self.members.items():
            for cause, p in member.predict_proba_one(x).items():
                mixed[cause] = mixed.get(cause, 0.0) + weights[name] * p
        probs = normalize(self.causes or tuple(mixed), mixed)
        leader = max(weights, key=lambda n: weights[n])
        decider = leader if weights[leader] >= self.dominance else "ensemble"
        attribution: dict[str, float] = {}
        if explain and decider != "ensemble":
            attribution = self.members[decider].explain_one(x)
        elif explain:
            attribution = dict.fromkeys(x, 0.0)
            for name, member in self.members.items():
                if weights[name] <= 0:
                    continue
                a = member.explain_one(x)
                norm = sum(abs(v) for v in a.values())
                if norm <= 0:
                    continue
                for k, v in a.items():
                    attribution[k] = attribution.get(k, 0.0) + weights[name] * v / norm
        return probs, decider, attribution
