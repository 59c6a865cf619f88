"""Window cells without a sketch while their sample holds every value: the same results."""

from __future__ import annotations

from array import array

import numpy as np
import pytest

from perfloop.schemas.messages import SeriesAggregate
from perfloop.streams.exact_sum import exact_parts
from perfloop.streams.group_aggregates import QUANTILES, held_quantiles
from perfloop.streams.sketch import DEFAULT_MAX_BUCKETS, QuantileSketch
from perfloop.streams.window_cell import WindowCell

T0 = 1_700_000_000.0


def signed_values(rng: np.random.Generator, n: int) -> np.ndarray:
    values = np.round(rng.normal(0, 50, n), 3)
    values[rng.random(n) < 0.15] = 0.0
    return values


def feed(cell: WindowCell, values: np.ndarray, k: int, rng: np.random.Generator) -> None:
    """Add ``values`` in random slices through each of the cell's ways in."""
    at = 0
    keys = QuantileSketch().keys(np.where(values == 0.0, 1.0, values))
    while at < values.size:
        n = int(rng.integers(1, 6))
        part, part_keys = values[at : at + n], keys[at : at + n]
        ts = T0 + np.arange(at, at + part.size, dtype=float)
        way = int(rng.integers(0, 3))
        if way == 0 or part.size == 1:
            m, shift = exact_parts(part[:1])
            cell.add_point(float(part[0]), float(ts[0]), int(m[0]), int(shift[0]),
                           int(part_keys[0]), k)  # fmt: skip
            at += 1
            continue
        if way == 1:
            cell.add(part, ts, k)
        else:
            total = sum(int(a) << int(b) for a, b in zip(*exact_parts(part), strict=True))
            cell.add_few(part.size, total, float(part.min()), float(part.max()),
                         float(part[-1]), float(ts[-1]), part.tolist(),
                         part_keys.tolist(), k)  # fmt: skip
        at += part.size


@pytest.mark.parametrize("k", [0, 1, 8, 64])
def test_the_sketch_is_the_one_adding_every_value_builds(k: int) -> None:
    rng = np.random.default_rng(k)
    for n in (1, 5, k, k + 1, 3 * k + 7):
        values = signed_values(rng, max(n, 1))
        cell = WindowCell.empty(seed=n, alpha=0.01)
        feed(cell, values, k, rng)
        reference = QuantileSketch(0.01)
        reference.add(values)
        assert (cell.sketch is None) == (values.size <= k), (n, k)
        assert cell.full_sketch().to_json() == reference.to_json()
        assert cell.count == values.size


def test_held_quantiles_are_each_cells_sketch_quantiles() -> None:
    rng = np.random.default_rng(7)
    cells = []
    for i in range(300):
        cell = WindowCell.empty(seed=i, alpha=0.01)
        values = signed_values(rng, int(rng.integers(1, 65)))
        if i % 5 == 0:
            values = np.abs(values) + 1.0  # all positive
        cell.add(values, T0 + np.arange(values.size, dtype=float), 64)
        assert cell.sketch is None
        cells.append(cell)
    expected = [tuple(c.full_sketch().quantiles(QUANTILES)) for c in cells]
    assert held_quantiles(cells, 0.01) == expected  # exactly, float for float


def test_held_quantiles_leave_cells_whose_keys_a_sketch_would_merge_to_the_sketch() -> None:
    cell = WindowCell.empty(seed=1, alpha=0.01)
    cell.add(np.array([1e-200, 3.0, 1e200]), T0 + np.arange(3.0), 64)
    assert held_quantiles([cell], 0.01) is None
    agg = cell.to_series_aggregate("x", ())
    sketch = cell.full_sketch().quantiles(QUANTILES)
    assert [agg.p50, agg.p95, agg.p99] == [min(max(q, 1e-200), 1e200) for q in sketch]


def test_held_quantiles_of_cells_far_apart_but_each_narrow_are_computed_together() -> None:
    """Only a cell whose own keys a sketch would merge needs its sketch: cells of values far
    apart from each other (bytes and fractions of a millisecond) are still done at once."""
    tiny, huge = WindowCell.empty(seed=1, alpha=0.01), WindowCell.empty(seed=2, alpha=0.01)
    tiny.add(np.array([1e-7, 3e-7, 2e-7]), T0 + np.arange(3.0), 64)
    huge.add(np.array([4e12, 9e12]), T0 + np.arange(2.0), 64)
    low, high = QuantileSketch(0.01).keys(np.array([1e-7, 9e12])).tolist()
    assert high - low >= DEFAULT_MAX_BUCKETS  # too wide for one sketch together
    expected = [tuple(c.full_sketch().quantiles(QUANTILES)) for c in (tiny, huge)]
    assert held_quantiles([tiny, huge], 0.01) == expected


def test_a_cell_restored_without_its_sketch_must_hold_every_value() -> None:
    sample = np.array([1.0, 2.0]).tobytes()
    with pytest.raises(ValueError, match="sketch: missing"):
        WindowCell.restore(3, 0, 1.0, 2.0, 2.0, T0, 1, array("d", sample), None, 0.01)


def test_a_cells_aggregate_is_built_unchecked_yet_holds_the_schema() -> None:
    """The cell builds its SeriesAggregate without validating it: the same value validation
    would have made, and the same JSON."""
    rng = np.random.default_rng(11)
    for k in (4, 64):
        cell = WindowCell.empty(seed=5, alpha=0.01)
        cell.add(signed_values(rng, 40), T0 + np.arange(40.0), k)
        agg = cell.to_series_aggregate("latency_ms", (("region", "eu-1"),))
        validated = SeriesAggregate.model_validate(agg.model_dump())
        assert agg == validated
        assert agg.model_dump_json() == validated.model_dump_json()
