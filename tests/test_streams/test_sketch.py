"""The quantile sketch: accuracy against numpy, merging, zeros and negatives, state."""

from __future__ import annotations

import math

import numpy as np
import pytest

from perfloop.streams.sketch import QuantileSketch

QS = (0.5, 0.95, 0.99)


def _lower(data: np.ndarray, q: float) -> float:
    return float(np.percentile(data, q * 100, method="lower"))


def _assert_close(sketch: QuantileSketch, data: np.ndarray, alpha: float = 0.01) -> None:
    for q in QS:
        want = _lower(data, q)
        got = sketch.quantile(q)
        assert abs(got - want) <= alpha * abs(want) + 1e-12, (q, got, want)


@pytest.mark.parametrize(
    "name, data",
    [
        ("lognormal", np.random.default_rng(1).lognormal(mean=3.0, sigma=1.5, size=200_000)),
        ("pareto", np.random.default_rng(2).pareto(a=1.2, size=200_000) + 1.0),
        ("pareto-small", (np.random.default_rng(3).pareto(a=0.8, size=5_000) + 1.0) * 1e9),
    ],
)
def test_quantiles_within_relative_accuracy_on_heavy_tails(name: str, data: np.ndarray) -> None:
    sketch = QuantileSketch(alpha=0.01)
    sketch.add(data)
    assert sketch.count == data.size
    _assert_close(sketch, data)


def test_adding_in_chunks_equals_adding_at_once() -> None:
    data = np.random.default_rng(4).lognormal(size=10_000)
    whole, parts = QuantileSketch(), QuantileSketch()
    whole.add(data)
    for chunk in np.array_split(data, 37):
        parts.add(chunk)
    assert whole.to_json() == parts.to_json()


@pytest.mark.parametrize("max_buckets", [2048, 16])
def test_adding_few_keys_at_a_time_equals_adding_at_once(max_buckets: int) -> None:
    data = np.random.default_rng(5).lognormal(sigma=2.0, size=5_000)
    whole, few = QuantileSketch(max_buckets=max_buckets), QuantileSketch(max_buckets=max_buckets)
    whole.add(data)
    keys = whole.keys(data).tolist()
    for start in range(0, len(keys), 7):  # lists of 7 keys, as small window groups come
        few.add_positive_key_list(keys[start : start + 7])
    assert few.to_json() == whole.to_json()
    assert max_buckets > 16 or len(few.state()[2]) == 16  # low buckets were collapsed


def test_merge_equals_the_sketch_of_the_union() -> None:
    rng = np.random.default_rng(5)
    a_data, b_data = rng.lognormal(size=5000), rng.lognormal(mean=5, size=3000)
    a, b, both = QuantileSketch(), QuantileSketch(), QuantileSketch()
    a.add(a_data)
    b.add(b_data)
    both.add(np.concatenate([a_data, b_data]))
    a.merge(b)
    assert a.to_json() == both.to_json()
    _assert_close(a, np.concatenate([a_data, b_data]))


def test_zeros_and_negative_values() -> None:
    data = np.concatenate(
        [
            np.zeros(100),
            -np.random.default_rng(6).lognormal(size=300),
            np.random.default_rng(7).lognormal(size=600),
        ]
    )
    sketch = QuantileSketch()
    sketch.add(data)
    assert sketch.zero_count == 100
    for q in (0.0, 0.1, 0.3, 0.32, 0.35, 0.5, 0.95, 1.0):
        want = _lower(data, q)
        assert abs(sketch.quantile(q) - want) <= 0.01 * abs(want) + 1e-12, q


def test_empty_sketch_has_no_quantiles() -> None:
    assert math.isnan(QuantileSketch().quantile(0.5))
    with pytest.raises(ValueError, match="q: 1.5"):
        QuantileSketch().quantile(1.5)


def test_bucket_count_is_bounded_and_high_quantiles_stay_accurate() -> None:
    data = np.geomspace(1e-300, 1e300, 50_000)
    sketch = QuantileSketch(max_buckets=512)
    sketch.add(data)
    state = sketch.to_json()
    assert len(state["pos"][1]) <= 512
    assert sketch.count == data.size
    for q in (0.999, 1.0):  # the top of the range keeps full accuracy; the bottom is collapsed
        want = _lower(data, q)
        assert abs(sketch.quantile(q) - want) <= 0.01 * want


def test_merge_rejects_a_different_alpha() -> None:
    with pytest.raises(ValueError, match="alpha"):
        QuantileSketch(0.01).merge(QuantileSketch(0.02))


def test_state_round_trip_is_exact_and_small() -> None:
    sketch = QuantileSketch()
    sketch.add(np.random.default_rng(8).lognormal(mean=2, sigma=1, size=100_000))
    sketch.add([0.0, -3.0])
    raw = sketch.to_bytes()
    back = QuantileSketch.from_bytes(raw)
    assert back.to_json() == sketch.to_json()
    assert back.quantiles(QS) == sketch.quantiles(QS)
    assert len(raw) < 4000
    back.add([5.0])
    sketch.add([5.0])
    assert back.to_json() == sketch.to_json()


def test_bucket_counts_widen_before_they_overflow_int32() -> None:
    big = np.array([2**31 - 10], dtype=np.int64)
    sketch = QuantileSketch.from_state(0.01, 2048, 0, int(sketch_key(5.0)), big, 0, big[:0])
    sketch.add([5.0] * 20)
    sketch.add_positive_keys(np.array([sketch_key(5.0)]))
    assert sketch.count == 2**31 + 11
    assert sketch.state()[2].tolist() == [2**31 + 11]


def test_small_bucket_counts_widen_past_int16_whichever_way_values_come() -> None:
    values = np.full(40_000, 5.0)  # one bucket, past what int16 counts can hold
    key = sketch_key(5.0)
    one_by_one = QuantileSketch()
    for value in values[:33_000].tolist():
        one_by_one.add_one(value, key)
    one_by_one.add(values[33_000:])
    at_once, merged = QuantileSketch(), QuantileSketch()
    at_once.add(values)
    for _ in range(2):
        merged.merge(at_once)
    assert one_by_one.to_json() == at_once.to_json()
    assert at_once.state()[2].tolist() == [40_000] and merged.state()[2].tolist() == [80_000]
    restored = QuantileSketch.from_json(merged.to_json())
    restored.add_one(5.0, key)
    assert restored.count == 80_001


def sketch_key(value: float) -> int:
    return int(QuantileSketch().keys(np.array([value]))[0])
