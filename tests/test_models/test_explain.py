"""Explanations: attribution summaries and the models' attributions."""

from __future__ import annotations

import math

import pytest

from perfloop.models.explain import attribution_entropy, attribution_sparsity, top_features
from perfloop.models.prior import RulePrior
from perfloop.models.river_model import RiverCauseClassifier
from perfloop.models.synthetic import labelled_stream
from perfloop.models.torch_model import TorchCauseClassifier
from perfloop.schemas.vocabulary import causes_of


def test_entropy_and_sparsity_bounds() -> None:
    assert attribution_entropy({"a": 0.0, "b": 0.0}) == 1.0
    assert attribution_sparsity({"a": 0.0, "b": 0.0}) == 0.0
    assert attribution_entropy({"a": 2.0, "b": 0.0, "c": 0.0}) == 0.0
    assert attribution_sparsity({"a": 2.0, "b": 0.0, "c": 0.0}) == pytest.approx(2 / 3)
    even = dict.fromkeys("abcd", 0.3)
    assert attribution_entropy(even) == pytest.approx(1.0)
    assert attribution_sparsity(even) == 0.0
    assert attribution_entropy({"a": math.nan, "b": 1.0}) == 0.0


def test_top_features_rank_by_magnitude() -> None:
    top = top_features({"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 0.1, "b": -0.5, "c": 0.2}, 2)
    assert [(f.name, f.value, f.attribution) for f in top] == [("b", 2.0, -0.5), ("c", 3.0, 0.2)]


STREAM = labelled_stream("cache", 80, seed=4)


def test_torch_integrated_gradients_add_up_to_the_probability_change() -> None:
    model = TorchCauseClassifier(causes_of("cache"), ig_steps=64)
    for x, y in STREAM[:-1]:
        model.learn_one(x, y)
    x = STREAM[-1][0]
    probs = model.predict_proba_one(x)
    cause = max(probs, key=lambda c: probs[c])
    baseline = model.predict_proba_one(dict(zip(model._keys or (), model._mean, strict=True)))
    total = sum(model.explain_one(x).values())
    assert total == pytest.approx(probs[cause] - baseline[cause], abs=0.02)


def test_linear_attribution_points_at_the_growing_component() -> None:
    model = RiverCauseClassifier(causes_of("cache"))
    for x, y in STREAM[:-1]:
        model.learn_one(x, y)
    x, y = STREAM[-1]
    attribution = model.explain_one(x)
    top = max(attribution, key=lambda k: abs(attribution[k]))
    assert top.endswith("_growth") or top.startswith("share_"), top


def test_the_prior_attributes_only_what_it_reads() -> None:
    x, _ = STREAM[0]
    attribution = RulePrior("cache").explain_one(x)
    used = {k for k, v in attribution.items() if v != 0.0}
    assert used and used <= {"share_capacity", "share_expiry", "share_key_space"}
