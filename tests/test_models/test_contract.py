"""One contract, every cause classifier: river's protocol, pure predictions, round trips."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from perfloop.models.base import CauseClassifier
from perfloop.models.river_model import MODELS, RiverCauseClassifier
from perfloop.models.synthetic import labelled_stream
from perfloop.models.torch_model import TorchCauseClassifier
from perfloop.schemas.vocabulary import causes_of

AREA = "latency"
CAUSES = causes_of(AREA)
STREAM = labelled_stream(AREA, 61, seed=11)

Factory = Callable[[], RiverCauseClassifier | TorchCauseClassifier]
FACTORIES: dict[str, Factory] = {
    **{f"river-{m}": (lambda m=m: RiverCauseClassifier(CAUSES, m, seed=1)) for m in MODELS},
    "torch": lambda: TorchCauseClassifier(CAUSES, seed=1),
}


@pytest.fixture(params=sorted(FACTORIES))
def make(request: pytest.FixtureRequest) -> Factory:
    return FACTORIES[request.param]


def _check_probs(probs: dict[str, float]) -> None:
    assert tuple(sorted(probs)) == tuple(sorted(CAUSES))
    assert sum(probs.values()) == pytest.approx(1.0)
    assert all(0.0 <= p <= 1.0 for p in probs.values())


def test_classifier_contract(make: Factory) -> None:
    model = make()
    assert isinstance(model, CauseClassifier)
    probe, _ = STREAM[-1]
    # before any label: a valid (uniform) answer
    _check_probs(model.predict_proba_one(probe))
    assert set(model.explain_one(probe)) == set(probe)
    before = model.predict_proba_one(probe)

    for x, y in STREAM[:-1]:
        model.learn_one(x, y)
    after = model.predict_proba_one(probe)
    _check_probs(after)
    assert after != before, "learning did not change the predictions"

    # predicting and explaining are pure
    state = model.dumps()
    assert model.predict_proba_one(probe) == after
    explanation = model.explain_one(probe)
    assert model.explain_one(probe) == explanation
    assert model.dumps() == state
    assert model.predict_proba_one(probe) == after
    assert set(explanation) == set(probe)

    # restoring round-trips, and the copies keep learning the same way
    restored = type(model).loads(state)
    copied = model.clone(include_state=True)
    assert restored.predict_proba_one(probe) == after
    assert copied.predict_proba_one(probe) == after
    x, y = STREAM[0]
    for m in (model, restored, copied):
        m.learn_one(x, y)
    assert restored.predict_proba_one(probe) == model.predict_proba_one(probe)
    assert copied.predict_proba_one(probe) == model.predict_proba_one(probe)

    # a plain clone is fresh
    fresh = model.clone()
    assert fresh.predict_proba_one(probe) == before

    with pytest.raises(ValueError, match="y: 'nope'"):
        model.learn_one(x, "nope")
