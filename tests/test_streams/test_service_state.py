"""A service's detection state as one table record, and the older two-record layout."""

from __future__ import annotations

import json

from window_builders import series, window

from perfloop.schemas.config import PerfloopConfig
from perfloop.schemas.messages import WindowAggregate
from perfloop.streams.history import decode
from perfloop.streams.service_state import MAGIC, ServiceState, history_in

CONFIG = PerfloopConfig()
KEEP = 3


def latency(i: int, ms: float) -> WindowAggregate:
    return window(i, series("latency_ms", ms, p95=ms))


INPUT = [latency(i, ms) for i, ms in enumerate([100, 900, 900, 900, 100, 100, 100, 900, 900])]


def test_a_state_written_and_read_back_after_every_window_detects_as_one_never_written() -> None:
    kept = ServiceState.load(None, None, CONFIG)
    reloaded = ServiceState.load(None, None, CONFIG)
    kept_breaches, reloaded_breaches = [], []
    for w in INPUT:
        kept_breaches += kept.observe(w, KEEP)
        reloaded_breaches += reloaded.observe(w, KEEP)
        record = reloaded.dump()
        assert record.startswith(MAGIC) and reloaded.record is record
        reloaded = ServiceState.load(record, None, CONFIG)
    assert kept_breaches and reloaded_breaches == kept_breaches
    assert [w.start for w in reloaded.windows()] == [w.start for w in INPUT[-KEEP:]]
    assert reloaded.windows() == kept.windows()
    assert history_in(kept.dump()) == history_in(record)


def test_a_window_seen_again_is_not_added_twice() -> None:
    state = ServiceState.load(None, None, CONFIG)
    for w in INPUT[:3]:
        state.observe(w, KEEP)
    record = state.dump()
    again = ServiceState.load(record, None, CONFIG)
    again.observe(INPUT[2], KEEP)  # redelivered after a restart
    assert [w.start for w in again.windows()] == [w.start for w in INPUT[:3]]


def test_the_two_record_layout_loads_and_continues_in_one_record() -> None:
    old = ServiceState.load(None, None, CONFIG)
    for w in INPUT[:4]:
        old.observe(w, KEEP)
    # what earlier workers wrote: the detector's JSON, and the history under h:<service>
    detector = json.dumps(old.detector.to_json()).encode()
    history = old.history_blob()

    state = ServiceState.load(detector, history, CONFIG)
    assert state.legacy
    assert [w.start for w in state.windows()] == [w.start for w in INPUT[1:4]]
    later = state.observe(INPUT[4], KEEP) + state.observe(INPUT[5], KEEP)
    assert later == old.observe(INPUT[4], KEEP) + old.observe(INPUT[5], KEEP)
    record = state.dump()
    assert decode(history_in(record)) == old.windows()
    assert not ServiceState.load(record, None, CONFIG).legacy
    assert not ServiceState.load(detector, None, CONFIG).legacy  # no h: record to replace


def test_a_table_in_the_two_record_layout_is_read_and_left_in_one_record() -> None:
    old = ServiceState.load(None, None, CONFIG)
    for w in INPUT[:3]:
        old.observe(w, KEEP)
    key = b"api"
    table = {key: json.dumps(old.detector.to_json()).encode(), b"h:" + key: old.history_blob()}

    state = ServiceState.read(table, key, CONFIG)
    assert state.observe(INPUT[3], KEEP) == old.observe(INPUT[3], KEEP)
    records = state.records(key)
    assert records[1:] == [(b"h:" + key, None)]  # the h: record is deleted
    for name, value in records:
        if value is None:
            del table[name]
        else:
            table[name] = value
    assert list(table) == [key] and table[key].startswith(MAGIC)
    assert history_in(table[key]) == old.history_blob()
    assert ServiceState.read(table, key, CONFIG).windows() == old.windows()
    assert state.records(key) == [(key, table[key])]  # the h: record is deleted once
