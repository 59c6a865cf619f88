"""The worker keeps its startup objects out of the cyclic collector's sight."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from perfloop.streams.kafka.worker import GC_THRESHOLDS, tune_gc


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_tune_gc_freezes_what_exists_and_raises_the_thresholds(restore_gc: None) -> None:
    survivor = [object() for _ in range(1000)]  # alive before the freeze
    tune_gc()
    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_freeze_count() >= len(survivor)
    assert gc.get_threshold()[0] > 700  # the interpreter's default
