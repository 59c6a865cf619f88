"""One contract, every registered area: the checks each area must pass, whoever wrote it.

The checks are those the stages rely on: its causes and remedies are the catalog's; the
metrics it reads are the vocabulary's and its simulator emits them; a fault of each cause,
simulated by the area's own profile, is detected on the area's trigger and diagnosed as that
cause (by the rule prior, before any label); and a verification with no post-action window
is ``no_data``.
"""

from __future__ import annotations

import pytest
from area_windows import TARGET_RPS, Simulated

from perfloop.actions.catalog import catalog, remedies_for
from perfloop.areas import registry
from perfloop.areas.base import Area
from perfloop.areas.view import SeriesView
from perfloop.models.diagnoser import Diagnoser
from perfloop.schemas.config import DetectionConfig, VerificationConfig
from perfloop.schemas.messages import Breach
from perfloop.schemas.vocabulary import area_metrics, non_negative_metrics
from perfloop.streams.detect import Detector
from perfloop.streams.signals import window_observations

AREAS = registry.areas()
CAUSES = [(a.name, cause) for a in AREAS for cause in a.causes]
DETECTION = DetectionConfig(throughput_target_rps=TARGET_RPS)


@pytest.mark.parametrize("area", AREAS, ids=lambda a: a.name)
def test_causes_and_remedies_are_the_catalogs(area: Area) -> None:
    registry.check(area)
    every = set(catalog())
    for cause, remedies in area.causes.items():
        assert remedies_for(area.name, cause) == remedies
        assert set(remedies) <= every
        for r in remedies:
            assert r.metric in area_metrics(area.name), r.key
    assert set(area.profile.efficacy) <= {(c, r.name) for c, rs in area.causes.items() for r in rs}


@pytest.mark.parametrize("area", AREAS, ids=lambda a: a.name)
def test_signals_are_in_the_vocabulary_and_simulated(area: Area) -> None:
    metrics = area_metrics(area.name)
    assert set(metrics) <= non_negative_metrics()
    (w,) = Simulated(seed=1).windows(1)
    assert set(metrics) <= {s.metric for s in w.series}
    readings = area.read(SeriesView(w, DETECTION))
    assert tuple(readings) == area.signals
    assert all(readings[m] is not None for m in area.components.values()), readings
    assert all(t.read(SeriesView(w, DETECTION)) is not None for t in area.triggers)


@pytest.mark.parametrize(("area", "cause"), CAUSES)
def test_a_simulated_fault_is_detected_and_diagnosed_as_its_cause(area: str, cause: str) -> None:
    service = Simulated(seed=7, levels={f"{area}/{cause}": 1.0})
    detector = Detector(DETECTION)
    history = service.windows(4)
    events = [e for w in history for e in detector.observe(w)]
    breaches = [e for e in events if isinstance(e, Breach)]
    assert [b.area for b in breaches] == [area], events
    (breach,) = breaches
    assert breach.signal in {t.name for t in registry.get(area).triggers}
    diagnosis = Diagnoser().diagnose(breach, history, detection=DETECTION)
    assert diagnosis.decider == "prior" and diagnosis.cause == cause, diagnosis.probabilities


@pytest.mark.parametrize("area", AREAS, ids=lambda a: a.name)
def test_a_healthy_service_breaches_nothing(area: Area) -> None:
    detector = Detector(DETECTION)
    events = [e for w in Simulated(seed=3).windows(4) for e in detector.observe(w)]
    assert events == []


@pytest.mark.parametrize("area", AREAS, ids=lambda a: a.name)
def test_no_post_action_window_gives_no_data(area: Area) -> None:
    history = Simulated(seed=5).windows(3)
    for trigger in area.triggers:
        baseline = [window_observations(w, DETECTION)[trigger.name] for w in history]
        rule = DETECTION.rule(trigger.rule, trigger.default_rule)
        result = trigger.test.verify(rule, baseline, [], VerificationConfig())
        assert result.verdict == "no_data", trigger.name
