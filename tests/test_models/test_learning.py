"""The combined model learns every area from labels and recovers from an abrupt drift.

The synthetic streams are built from window aggregates through the features function; the
cause shows in growth rates more than in shares, so the rule prior is not enough.
"""

from __future__ import annotations

import pytest

from perfloop.models.diagnoser import Diagnoser
from perfloop.models.prior import RulePrior
from perfloop.models.synthetic import labelled_stream
from perfloop.schemas.vocabulary import areas

LEARN, AFTER_DRIFT = 200, 300
SHORT = 50  # a short window shows the drift's dip and the recovery


def _windowed(hits: list[bool], end: int, width: int) -> float:
    part = hits[max(0, end - width) : end]
    return sum(part) / len(part)


@pytest.mark.parametrize("area", areas())
def test_learns_each_area_and_recovers_from_drift(area: str) -> None:
    stream = labelled_stream(area, LEARN + AFTER_DRIFT, seed=20, drift_at=LEARN)
    d = Diagnoser()
    prior = RulePrior(area)
    hits: list[bool] = []
    prior_hits: list[bool] = []
    curve: list[tuple[int, float, float]] = []
    for i, (x, y) in enumerate(stream):
        probs, _, _ = d.decide(area, x, explain=False)
        hits.append(max(probs, key=lambda c: probs[c]) == y)
        p = prior.predict_proba_one(x)
        prior_hits.append(max(p, key=lambda c: p[c]) == y)
        assert d.learn_label(f"{area}-{i}", area, x, y)
        accuracy = d.accuracy(area)
        assert accuracy is not None
        if (i + 1) % 25 == 0:
            curve.append((i + 1, round(accuracy, 3), round(_windowed(hits, i + 1, SHORT), 3)))
        if i + 1 == LEARN:
            at_learn = accuracy
    report = f"{area}: (labels, accuracy over 200, over {SHORT}) {curve}"
    prior_accuracy = sum(prior_hits[:LEARN]) / LEARN
    assert prior_accuracy < 0.85, f"the prior alone gets {prior_accuracy:.2f}; {report}"
    assert at_learn == pytest.approx(sum(hits[:LEARN]) / LEARN)
    assert at_learn >= 0.90, report
    dip = min(_windowed(hits, LEARN + k, SHORT) for k in range(10, 60))
    assert dip < 0.85, f"the drift did not show: {report}"
    final = d.accuracy(area)
    assert final is not None and final > 0.85, report
    assert _windowed(hits, LEARN + AFTER_DRIFT, SHORT) > 0.85, report
    print(report)
