"""The diagnoser: prior first, dedupe per incident, finite features, persistence."""

from __future__ import annotations

import math
import random

import pytest

from perfloop.models.diagnoser import Diagnoser, diagnosis_id
from perfloop.models.features import feature_names
from perfloop.models.synthetic import labelled_stream, synthetic_breach, synthetic_history
from perfloop.schemas.config import DiagnosisConfig
from perfloop.schemas.messages import Diagnosis
from perfloop.schemas.vocabulary import areas, causes_of


def test_learning_is_deduplicated_per_incident() -> None:
    d = Diagnoser()
    (x, y), (x2, y2) = labelled_stream("cache", 2, seed=5)
    assert d.learn_label("inc-1", "cache", x, y) is True
    assert d.learn_label("inc-1", "cache", x2, y2) is False
    assert d.learn_label("inc-1", "memory", x, "cache") is False
    assert d.labels_seen("cache") == 1 and d.labels_seen("memory") == 0
    assert d.learn_label("inc-2", "cache", x2, y2) is True
    assert d.labels_seen("cache") == 2


def test_remembered_incidents_are_bounded() -> None:
    d = Diagnoser(remember=2)
    for i, (x, y) in enumerate(labelled_stream("cache", 3, seed=5)):
        assert d.learn_label(f"inc-{i}", "cache", x, y)
    assert d.learn_label("inc-2", "cache", x, y) is False
    assert d.learn_label("inc-0", "cache", x, y) is True  # forgotten, learnt again


def test_an_unknown_cause_is_refused() -> None:
    with pytest.raises(ValueError, match="cause: 'cpu' is not a cause of area 'cache'"):
        Diagnoser().learn_label("inc-1", "cache", {}, "cpu")


def test_the_prior_decides_until_min_labels() -> None:
    d = Diagnoser(DiagnosisConfig(min_labels=5))
    stream = labelled_stream("memory", 7, seed=2)
    history = synthetic_history("memory", "model", random.Random(9))
    for i, (x, y) in enumerate(stream):
        diagnosis = d.diagnose(synthetic_breach("memory", history), history)
        assert diagnosis.labels_seen == i
        assert (diagnosis.decider == "prior") == (i < 5), (i, diagnosis.decider)
        d.learn_label(f"inc-{i}", "memory", x, y)
    assert d.accuracy("memory") is not None


@pytest.mark.parametrize("area", areas())
def test_diagnoses_are_complete_and_finite_with_missing_metrics(area: str) -> None:
    d = Diagnoser(DiagnosisConfig(min_labels=3, top_features=4))
    rng = random.Random(4)
    for i, (x, y) in enumerate(labelled_stream(area, 4, seed=1, drop=0.5)):
        d.learn_label(f"i{i}", area, x, y)
    for drop in (0.0, 0.5, 1.0):
        history = synthetic_history(area, causes_of(area)[1], rng, drop=drop)
        diagnosis = d.diagnose(synthetic_breach(area, history, "b:7"), history, incident_id="inc-9")
        assert isinstance(diagnosis, Diagnosis)
        assert diagnosis.diagnosis_id == "b:7:diag" and diagnosis.incident_id == "inc-9"
        assert tuple(diagnosis.features) == feature_names(area)
        assert all(math.isfinite(v) for v in diagnosis.features.values())
        assert set(diagnosis.probabilities) == set(causes_of(area))
        assert sum(diagnosis.probabilities.values()) == pytest.approx(1.0)
        assert diagnosis.cause == max(diagnosis.probabilities, key=diagnosis.probabilities.get)
        assert len(diagnosis.top_features) == 4
        assert 0.0 <= diagnosis.attribution_entropy <= 1.0
        assert 0.0 <= diagnosis.attribution_sparsity <= 1.0
        assert diagnosis.labels_seen == 4 and diagnosis.decider != "prior"
        Diagnosis.model_validate_json(diagnosis.model_dump_json())
    # an empty history is diagnosed too (everything missing)
    empty = d.diagnose(synthetic_breach(area, history), [])
    assert all(empty.features[k] == 1.0 for k in empty.features if k.endswith("_missing"))


def test_the_diagnosis_features_are_what_the_loop_learns_from() -> None:
    d = Diagnoser(DiagnosisConfig(min_labels=0))
    history = synthetic_history("throughput", "io", random.Random(1))
    diagnosis = d.diagnose(synthetic_breach("throughput", history), history, incident_id="inc-1")
    assert d.learn_label("inc-1", "throughput", diagnosis.features, "io")
    again = d.diagnose(synthetic_breach("throughput", history), history, incident_id="inc-1")
    assert again.probabilities["io"] > diagnosis.probabilities["io"]


def test_a_restored_diagnoser_answers_and_learns_like_the_original() -> None:
    d = Diagnoser(DiagnosisConfig(min_labels=5))
    stream = labelled_stream("latency", 40, seed=3)
    for i, (x, y) in enumerate(stream[:30]):
        d.learn_label(f"i{i}", "latency", x, y)
    restored = Diagnoser.loads(d.dumps())
    copied = d.clone(include_state=True)
    for x, _ in stream[30:]:
        assert restored.decide("latency", x) == d.decide("latency", x)
        assert copied.decide("latency", x) == d.decide("latency", x)
    assert restored.learn_label("i0", "latency", *stream[0]) is False
    for i, (x, y) in enumerate(stream[30:], start=30):
        assert restored.learn_label(f"i{i}", "latency", x, y)
        d.learn_label(f"i{i}", "latency", x, y)
    assert restored.decide("latency", stream[0][0]) == d.decide("latency", stream[0][0])
    assert restored.accuracy("latency") == d.accuracy("latency")
    assert d.clone().labels_seen("latency") == 0
    with pytest.raises(ValueError, match="data: not a Diagnoser"):
        Diagnoser.loads(__import__("pickle").dumps(1))


def test_long_breach_ids_still_give_valid_diagnosis_ids() -> None:
    long_id = "x" * 128
    assert diagnosis_id(long_id) != diagnosis_id("x" * 127 + "y")
    assert len(diagnosis_id(long_id)) <= 128


def test_diagnosing_does_not_change_the_diagnoser() -> None:
    d = Diagnoser(DiagnosisConfig(min_labels=3))
    for i, (x, y) in enumerate(labelled_stream("memory", 6, seed=8)):
        d.learn_label(f"i{i}", "memory", x, y)
    history = synthetic_history("memory", "cache", random.Random(2))
    state = d.dumps()
    first = d.diagnose(synthetic_breach("memory", history), history)
    assert d.diagnose(synthetic_breach("memory", history), history) == first
    assert d.dumps() == state
