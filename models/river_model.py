"""The river cause classifier: ``preprocessing.StandardScaler | <multiclass model>``.

``model`` picks the multiclass learner:

- ``"softmax"`` (default): ``linear_model.SoftmaxRegression`` (with an intercept feature
  after the scaler), SGD. Chosen by measurement on drifting synthetic streams: see
  ``bench/bench_diagnose.py --select``, which prints each candidate's prequential accuracy
  before and after an abrupt drift and its cost.
- ``"ovr"``: ``multiclass.OneVsRestClassifier(linear_model.LogisticRegression())``.
- ``"hat"``: ``tree.HoeffdingAdaptiveTreeClassifier``.
- ``"arf"``: ``forest.ARFClassifier``.

Attributions: for the linear models, the predicted class's weight times the standardized
value (the feature's contribution to that class's logit); for trees and forests, occlusion:
the drop in the predicted class's probability when the feature is replaced by its running
mean.

>>> m = RiverCauseClassifier(("a", "b"))
>>> m.predict_proba_one({"x": 1.0})
{'a': 0.5, 'b': 0.5}
>>> for i in range(40):
...     m.learn_one({"x": float(i % 2)}, "ab"[i % 2])
>>> p = m.predict_proba_one({"x": 1.0}); p["b"] > 0.7
True
>>> m.explain_one({"x": 1.0})["x"] > 0
True
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Sequence
from typing import Any

from river import compose, forest, linear_model, multiclass, optim, preprocessing, tree

from perfloop.models.base import Features, normalize

MODELS = ("softmax", "ovr", "hat", "arf")
BIAS = "intercept"


def with_intercept(x: dict[str, float]) -> dict[str, float]:
    """``x`` plus a constant feature (SoftmaxRegression has no intercept of its own)."""
    return {**x, BIAS: 1.0}


def _learner(model: str, seed: int, learning_rate: float) -> Any:
    if model == "softmax":
        return compose.FuncTransformer(with_intercept) | linear_model.SoftmaxRegression(
            optimizer=optim.SGD(learning_rate)
        )
    if model == "ovr":
        return multiclass.OneVsRestClassifier(
            linear_model.LogisticRegression(optimizer=optim.SGD(learning_rate))
        )
    if model == "hat":
        return tree.HoeffdingAdaptiveTreeClassifier(grace_period=50, seed=seed)
    if model == "arf":
        return forest.ARFClassifier(n_models=5, grace_period=50, seed=seed)
    raise ValueError(f"model: unknown river model {model!r}; known: {', '.join(MODELS)}")


class RiverCauseClassifier:
    """A river pipeline over one area's causes, speaking
    :class:`perfloop.models.base.CauseClassifier`."""

    def __init__(
        self,
        causes: Sequence[str],
        model: str = "softmax",
        seed: int = 0,
        learning_rate: float = 0.05,
    ) -> None:
        self.causes = tuple(causes)
        self.model = model
        self.seed = seed
        self.learning_rate = learning_rate
        self.pipeline = preprocessing.StandardScaler() | _learner(model, seed, learning_rate)
        self._keys: tuple[str, ...] | None = None

    def clone(self, include_state: bool = False) -> RiverCauseClassifier:
        """A fresh classifier with the same parameters (with the learnt state if asked)."""
        if include_state:
            return copy.deepcopy(self)
        return RiverCauseClassifier(self.causes, self.model, self.seed, self.learning_rate)

    def dumps(self) -> bytes:
        """The classifier's state (pickle; load only trusted bytes)."""
        return pickle.dumps(self)

    @staticmethod
    def loads(data: bytes) -> RiverCauseClassifier:
        obj = pickle.loads(data)
        if not isinstance(obj, RiverCauseClassifier):
            raise ValueError(f"data: not a RiverCauseClassifier but {type(obj).__name__}")
        return obj

    def _conform(self, x: Features) -> dict[str, float]:
        keys = self._keys if self._keys is not None else tuple(x)
        return {k: float(x.get(k, 0.0)) for k in keys}

    def learn_one(self, x: Features, y: str) -> None:
        if y not in self.causes:
            raise ValueError(f"y: {y!r} is not one of {', '.join(self.causes)}")
        if self._keys is None:
            self._keys = tuple(x)
        self.pipeline.learn_one(self._conform(x), y)

    def predict_proba_one(self, x: Features) -> dict[str, float]:
        if self._keys is None:
            return normalize(self.causes, {})
        return normalize(self.causes, self.pipeline.predict_proba_one(self._conform(x)))

    def _standardized(self, x: dict[str, float]) -> dict[str, float]:
        scaler = self.pipeline.steps["StandardScaler"]
        out: dict[str, float] = scaler.transform_one(x)
        return out

    def explain_one(self, x: Features) -> dict[str, float]:
        if self._keys is None:
            return dict.fromkeys(x, 0.0)
        xc = self._conform(x)
        probs = self.predict_proba_one(xc)
        cause = max(probs, key=lambda c: probs[c])
        weights = self._linear_weights(cause)
        if weights is not None:
            z = self._standardized(xc)
            return {k: weights.get(k, 0.0) * z[k] for k in xc}
        scaler = self.pipeline.steps["StandardScaler"]
        out = {}
        for k in xc:
            occluded = dict(xc)
            occluded[k] = scaler.means.get(k, 0.0)
            out[k] = probs[cause] - self.predict_proba_one(occluded)[cause]
        return out

    def _linear_weights(self, cause: str) -> dict[str, float] | None:
        last = list(self.pipeline.steps.values())[-1]
        if isinstance(last, compose.Pipeline):
            last = list(last.steps.values())[-1]
        if isinstance(last, linear_model.SoftmaxRegression):
            return dict(last.weights.get(cause, {}))
        if isinstance(last, multiclass.OneVsRestClassifier):
            clf = last.classifiers.get(cause)
            return None if clf is None else dict(getattr(clf, "weights", {}))
        return None
