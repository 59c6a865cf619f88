"""A service's detection state as one table record."""

from __future__ import annotations

import json

import pytest
from window_builders import series, window

from perfloop.schemas.config import PerfloopConfig
from perfloop.schemas.messages import WindowAggregate
from perfloop.streams.service_state import MAGIC, ServiceState, history_in

CONFIG = PerfloopConfig()
KEEP = 3


def latency(i: int, ms: float) -> WindowAggregate:
    return window(i, series("latency_ms", ms, p95=ms))


INPUT = [latency(i, ms) for i, ms in enumerate([100, 900, 900, 900, 100, 100, 100, 900, 900])]


def test_a_state_written_and_read_back_after_every_window_detects_as_one_never_written() -> None:
    kept = ServiceState.load(None, CONFIG)
    reloaded = ServiceState.load(None, CONFIG)
    kept_breaches, reloaded_breaches = [], []
    for w in INPUT:
        kept_breaches += kept.observe(w, KEEP)
        reloaded_breaches += reloaded.observe(w, KEEP)
        record = reloaded.dump()
        assert record.startswith(MAGIC) and reloaded.record is record
        reloaded = ServiceState.load(record, CONFIG)
    assert kept_breaches and reloaded_breaches == kept_breaches
    assert [w.start for w in reloaded.windows()] == [w.start for w in INPUT[-KEEP:]]
    assert reloaded.windows() == kept.windows()
    assert history_in(kept.dump()) == history_in(record)


def test_a_window_seen_again_is_not_added_twice() -> None:
    state = ServiceState.load(None, CONFIG)
    for w in INPUT[:3]:
        state.observe(w, KEEP)
    record = state.dump()
    again = ServiceState.load(record, CONFIG)
    again.observe(INPUT[2], KEEP)  # redelivered after a restart
    assert [w.start for w in again.windows()] == [w.start for w in INPUT[:3]]


def test_a_record_in_another_layout_is_a_clear_error() -> None:
    state = ServiceState.load(None, CONFIG)
    state.observe(INPUT[0], KEEP)
    detector_only = json.dumps(state.detector.to_json()).encode()
    with pytest.raises(ValueError, match=r"detection state: a record starting b'\{\"'"):
        ServiceState.load(detector_only, CONFIG)
