"""Detection where windows close: states per partition, written and restored as records."""

from __future__ import annotations

import pytest
from window_builders import series, window

from perfloop.schemas.config import PerfloopConfig
from perfloop.schemas.messages import WindowAggregate
from perfloop.streams.detect_stage import DetectStage
from perfloop.streams.history import decode
from perfloop.streams.service_state import MAGIC

CONFIG = PerfloopConfig()


def latency(i: int, ms: float, service: str = "api") -> WindowAggregate:
    return window(i, series("latency_ms", ms, p95=ms), service=service)


def apply(table: dict[bytes, bytes], records: list[tuple[bytes, bytes]]) -> None:
    """What compaction leaves of ``records`` on top of ``table``."""
    table.update(records)


def test_a_breach_comes_with_the_windows_it_was_detected_on() -> None:
    stage = DetectStage(CONFIG)
    assert stage.observe(0, latency(0, 100)) == []
    assert stage.observe(0, latency(1, 900)) == []
    ((breach, history),) = stage.observe(0, latency(2, 900))
    assert breach.breach_id == f"api:latency:{round(latency(1, 0).start * 1000)}"
    assert [w.start for w in decode(history)] == [latency(i, 0).start for i in range(3)]
    assert stage.observe(0, latency(2, 900)) == []  # the same window again: nothing new


def test_states_written_at_a_checkpoint_restore_where_they_were() -> None:
    """Only the services a partition's windows changed are written, once each; a stage
    restored from what was written detects as the one that wrote it."""
    stage = DetectStage(CONFIG)
    topic: dict[int, dict[bytes, bytes]] = {0: {}, 1: {}}
    for i, ms in enumerate([100, 900]):
        stage.observe(0, latency(i, ms, "a"))
        stage.observe(0, latency(i, ms, "b"))
    stage.observe(1, latency(0, 900, "c"))
    first = stage.pending(0)
    assert [key for key, _ in first] == [b"a", b"b"] and all(v[:2] == MAGIC for _, v in first)
    apply(topic[0], first)
    apply(topic[1], stage.pending(1))
    assert stage.pending(0) == [] and stage.pending(1) == []
    assert len(stage.observe(0, latency(2, 900, "b"))) == 1
    second = stage.pending(0)
    assert [key for key, _ in second] == [b"b"]
    apply(topic[0], second)

    restored = DetectStage(CONFIG)
    restored.restore(0, topic[0])
    assert restored.services(0) == [b"a", b"b"] and restored.pending(0) == []
    # "a" fires on its next high window, "b" stays open: as without the restart
    ((breach, _),) = restored.observe(0, latency(2, 900, "a"))
    assert breach.breach_id == f"a:latency:{round(latency(1, 0).start * 1000)}"
    assert restored.observe(0, latency(3, 900, "b")) == []
    restored.drop(0)
    assert restored.services(0) == [] and restored.pending(0) == []


def test_a_record_in_another_layout_is_a_clear_error() -> None:
    stage = DetectStage(CONFIG)
    with pytest.raises(ValueError, match=r"detection state: a record starting b'\{\"'"):
        stage.restore(0, {b"api": b'{"version": 1}'})
