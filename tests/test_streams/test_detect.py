"""Detection over closed windows: signals, thresholds, hysteresis, ids, state."""

from __future__ import annotations

import pytest
from window_builders import T0, series, window

from perfloop.schemas.config import DetectionConfig
from perfloop.schemas.messages import Breach, WindowAggregate
from perfloop.streams.detect import BreachCleared, Detector, breach_id
from perfloop.streams.signals import window_signals


def run(det: Detector, windows: list[WindowAggregate]) -> list[Breach | BreachCleared]:
    return [event for w in windows for event in det.observe(w)]


def breaches(events: list[Breach | BreachCleared]) -> list[Breach]:
    return [e for e in events if isinstance(e, Breach)]


@pytest.mark.parametrize("value, fires", [(33.7e9, True), (33.5e9, False), (33.6e9, False)])
def test_memory_threshold(value: float, fires: bool) -> None:
    events = run(Detector(), [window(i, series("memory_bytes", value)) for i in range(3)])
    assert len(breaches(events)) == (1 if fires else 0)
    if fires:
        b = breaches(events)[0]
        assert (b.area, b.signal, b.observed, b.threshold) == (
            "memory",
            "memory_bytes.max",
            33.7e9,
            33.6e9,
        )


@pytest.mark.parametrize("rate, fires", [(0.79, True), (0.81, False)])
def test_cache_hit_rate_threshold(rate: float, fires: bool) -> None:
    def w(i: int) -> WindowAggregate:
        return window(
            i,
            series("cache_hits", 1, count=1, total=rate * 1000),
            series("cache_misses", 1, count=1, total=(1 - rate) * 1000),
        )

    events = run(Detector(), [w(i) for i in range(3)])
    assert len(breaches(events)) == (1 if fires else 0)
    if fires:
        assert breaches(events)[0].observed == pytest.approx(0.79)
        assert breaches(events)[0].direction == "below"


def test_cache_needs_enough_requests() -> None:
    det = Detector(DetectionConfig(cache_min_requests=100))
    few = [
        window(
            i,
            series("cache_hits", 1, count=1, total=1),
            series("cache_misses", 1, count=1, total=50),
        )
        for i in range(5)
    ]
    assert run(det, few) == []


def test_p95_latency_above_threshold_gives_exactly_one_breach() -> None:
    det = Detector()
    values = [300, 520, 610, 700, 800, 900]
    events = run(det, [window(i, series("latency_ms", 100, p95=v)) for i, v in enumerate(values)])
    (b,) = events
    assert isinstance(b, Breach)
    assert b.observed == 610 and b.threshold == 500 and b.windows == 2
    assert b.first_window_start == T0 + 10 and b.window_start == T0 + 20
    assert b.breach_id == f"api:latency:{int((T0 + 10) * 1000)}"
    assert b.breach_id == breach_id("api", "latency", T0 + 10)
    assert det.open_breaches() == {("api", "latency"): b.breach_id}


def test_breach_clears_after_clear_windows_and_can_fire_again() -> None:
    det = Detector()
    lat = [600, 600, 460, 440, 470, 440, 430, 600, 600]
    events = run(det, [window(i, series("latency_ms", 1, p95=v)) for i, v in enumerate(lat)])
    kinds = [(type(e).__name__, round((e.window_start - T0) / 10)) for e in events]
    assert kinds == [("Breach", 1), ("BreachCleared", 6), ("Breach", 8)]
    cleared = events[1]
    assert isinstance(cleared, BreachCleared)
    assert cleared.breach_id == events[0].breach_id and cleared.threshold == 450
    assert events[2].breach_id != events[0].breach_id


@pytest.mark.parametrize("low", [400.0, 480.0])
def test_oscillating_value_does_not_flap(low: float) -> None:
    det = Detector()
    values = [600.0 if i % 2 == 0 else low for i in range(20)]
    assert run(det, [window(i, series("latency_ms", 1, p95=v)) for i, v in enumerate(values)]) == []


def test_oscillating_value_after_a_breach_never_reopens_or_closes() -> None:
    det = Detector()
    values = [600.0, 600.0] + [600.0 if i % 2 == 0 else 400.0 for i in range(20)]
    events = run(det, [window(i, series("latency_ms", 1, p95=v)) for i, v in enumerate(values)])
    assert len(events) == 1 and isinstance(events[0], Breach)


def test_missing_windows_count_neither_way() -> None:
    det = Detector()
    ws = [
        window(0, series("latency_ms", 1, p95=700)),
        window(1, series("memory_bytes", 1e9)),  # no latency signal
        window(2, series("latency_ms", 1, p95=700)),
    ]
    (b,) = run(det, ws)
    assert b.first_window_start == T0 and b.windows == 2


def test_throughput_needs_a_target_and_uses_the_service_override() -> None:
    low = [window(i, series("throughput_rps", 90.0)) for i in range(3)]
    assert run(Detector(), low) == []
    cfg = DetectionConfig(services={"api": {"throughput_target_rps": 100.0}})
    (b,) = run(Detector(cfg), low)
    assert (b.area, b.signal, b.observed, b.threshold) == (
        "throughput",
        "throughput_rps.mean_ratio",
        0.9,
        1.0,
    )


def test_per_service_threshold_override() -> None:
    cfg = DetectionConfig(services={"batch": {"latency": {"fire": 5000.0, "clear": 4000.0}}})
    det = Detector(cfg)
    ws = [
        window(i, series("latency_ms", 1, p95=900), service=svc)
        for i in range(3)
        for svc in ("api", "batch")
    ]
    assert [b.service for b in breaches(run(det, ws))] == ["api"]


def test_attribution_fires_once_and_names_the_measure() -> None:
    det = Detector()
    ws = [
        window(
            i,
            series("attribution_entropy", 0.95),
            series("attribution_sparsity", 0.1),
            series("attribution_accuracy", 0.9),
        )
        for i in range(4)
    ]
    (b,) = run(det, ws)
    assert (b.area, b.signal, b.observed) == ("attribution", "attribution_entropy.mean", 0.95)
    assert b.breach_id == f"api:attribution:{int(T0 * 1000)}"


def test_labelled_series_are_combined_when_no_unlabelled_one_exists() -> None:
    agg = window(
        0,
        series("memory_bytes", 1e9, labels={"pod": "a"}),
        series("memory_bytes", 4e10, labels={"pod": "b"}),
        series("latency_ms", 1, p95=300, labels={"route": "/a"}),
        series("latency_ms", 1, p95=700, labels={"route": "/b"}),
    )
    got = {s.name: s.value for s in window_signals(agg, DetectionConfig())}
    assert got == {"memory_bytes.max": 4e10, "latency_ms.p95": 700}


def test_duplicate_or_old_windows_are_ignored() -> None:
    det = Detector()
    w0, w1 = (window(i, series("latency_ms", 1, p95=700)) for i in range(2))
    assert det.observe(w0) == [] and det.observe(w0) == []
    assert len(det.observe(w1)) == 1
    assert det.observe(w1) == [] and det.observe(w0) == []


def test_ids_are_deterministic_across_runs() -> None:
    ws = [
        window(i, series("memory_bytes", 4e10), series("latency_ms", 1, p95=900)) for i in range(5)
    ]
    first = [e.model_dump() for e in breaches(run(Detector(), ws))]
    second = [e.model_dump() for e in breaches(run(Detector(), ws))]
    assert first == second and len(first) == 2
    assert [b["area"] for b in first] == ["memory", "latency"]


def test_restored_detector_continues_identically() -> None:
    values = [600, 600, 700, 440, 430, 420, 600, 600, 600]
    ws = [window(i, series("latency_ms", 1, p95=v)) for i, v in enumerate(values)]
    for cut in range(len(ws)):
        det = Detector()
        head = run(det, ws[:cut])
        restored = Detector.from_bytes(det.to_bytes())
        assert restored.to_json() == det.to_json()
        assert head + run(restored, ws[cut:]) == run(Detector(), ws)
