"""The running aggregate of one series in one window.

A :class:`WindowCell` keeps count, the exact sum (:mod:`perfloop.streams.exact_sum`), min, max,
the last value by event time (ties go to the later arrival), a
:class:`~perfloop.streams.sketch.QuantileSketch`, and a deterministic reservoir sample
(:mod:`perfloop.streams.reservoir`) of at most ``k`` raw values. While the sample still holds
every value the cell has seen (at most ``k`` of them), the cell keeps no sketch: the sketch of
those values is derived from the sample when it is needed - when a value past the ``k``-th
comes, or for the quantiles of the closed window, computed for all such cells of a window at
once (:func:`~perfloop.streams.group_aggregates.held_quantiles`) - and is the same sketch that
adding the values one by one would have built.

The exact sum is an integer count of 2**-1074; a cell holds it as ``sum_m / 2**sum_scale``
with ``sum_scale`` only as large as its finest value needs, which keeps the integer small.

>>> cell = WindowCell.empty(seed=1, alpha=0.01)
>>> import numpy as np
>>> cell.add(np.array([3.0, 1.0, 2.0]), np.array([10.0, 12.0, 11.0]), k=4)
>>> cell.count, cell.min, cell.max, cell.last, cell.sample.tolist()
(3, 1.0, 3.0, 1.0, [3.0, 1.0, 2.0])
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from perfloop.schemas.messages import SeriesAggregate, unchecked
from perfloop.streams.exact_sum import (
    EXACT_SHIFT,
    exact_sums,
    rounded_sum,
    sum_and_mean,
    trailing_zeros,
)
from perfloop.streams.group_aggregates import QUANTILES
from perfloop.streams.reservoir import keep, keep_one
from perfloop.streams.sketch import QuantileSketch

_NO_SCALE = -4096  # the scale of an empty sum: below any value's


@dataclass(slots=True, eq=False)
class WindowCell:
    """One series' aggregates in one window (see the module docstring)."""

    count: int
    sum_m: int  # the exact sum is sum_m / 2**sum_scale (see the module docstring)
    sum_scale: int
    min: float
    max: float
    last: float
    last_ts: float
    seed: int
    sample: array[float]  # typecode "d": 8 bytes a value, not a list of float objects
    sketch: QuantileSketch | None  # None while the sample holds every value (module docstring)
    alpha: float

    @classmethod
    def empty(cls, seed: int, alpha: float) -> WindowCell:
        inf = float("inf")
        return cls(0, 0, _NO_SCALE, inf, -inf, 0.0, -inf, seed, array("d"), None, alpha)

    @classmethod
    def restore(
        cls,
        count: int,
        exact_sum: int,
        low: float,
        high: float,
        last: float,
        last_ts: float,
        seed: int,
        sample: array[float],
        sketch: QuantileSketch | None,
        alpha: float,
    ) -> WindowCell:
        """The cell with these aggregates (``exact_sum`` as :attr:`exact_sum` gives it);
        ``sketch`` may be None only when ``sample`` holds all ``count`` values."""
        if sketch is None and len(sample) != count:
            raise ValueError(f"sketch: missing, and the sample holds {len(sample)} of {count}")
        cell = cls(count, 0, _NO_SCALE, low, high, last, last_ts, seed, sample, sketch, alpha)
        cell._add_exact(exact_sum)
        return cell

    def full_sketch(self) -> QuantileSketch:
        """The sketch of every value: the cell's own, or one built from the sample that holds
        them all (the cell does not keep it)."""
        if self.sketch is not None:
            return self.sketch
        sketch = QuantileSketch(self.alpha)
        if self.sample:
            sketch.add(np.frombuffer(self.sample, dtype=np.float64))
        return sketch

    def _sketch_for(self, more: int, k: int) -> QuantileSketch | None:
        """The sketch to add ``more`` values to, or None while the sample will still hold
        every value (call before the count moves on)."""
        sketch = self.sketch
        if sketch is None and self.count + more > k:
            sketch = self.sketch = self.full_sketch()
        return sketch

    @property
    def exact_sum(self) -> int:
        """The sum of the values in units of 2**-1074, exactly."""
        return self.sum_m << (EXACT_SHIFT - self.sum_scale) if self.sum_m else 0

    def sum_parts(self) -> tuple[int, int]:
        """``(m, shift)`` with ``m`` odd (or both 0) and ``exact_sum == m << shift``."""
        m = self.sum_m
        if not m:
            return 0, 0
        zeros = trailing_zeros(m)
        return m >> zeros, EXACT_SHIFT - self.sum_scale + zeros

    def _add_scaled(self, m: int, scale: int) -> None:
        """Add ``m / 2**scale`` to the exact sum."""
        own = self.sum_scale
        if scale <= own:
            self.sum_m += m << (own - scale)
        else:
            self.sum_m = (self.sum_m << (scale - own)) + m
            self.sum_scale = scale

    def _add_exact(self, total: int) -> None:
        """Add ``total`` units of 2**-1074 to the exact sum."""
        if total:
            zeros = trailing_zeros(total)
            self._add_scaled(total >> zeros, EXACT_SHIFT - zeros)

    @property
    def sum(self) -> float:
        """The sum of the values, rounded once; beyond the float range (finite values can add
        up past it) it saturates at the largest float of its sign.

        >>> cell = WindowCell.empty(seed=1, alpha=0.01)
        >>> cell.add(np.array([1e308, 1e308]), np.array([1.0, 2.0]), k=0)
        >>> cell.sum, cell.mean
        (1.7976931348623157e+308, 1e+308)
        """
        return rounded_sum(self.exact_sum)

    @property
    def mean(self) -> float:
        """The mean of the values (exact before rounding when the sum saturates)."""
        return sum_and_mean(self.exact_sum, self.count)[1]

    def add(self, values: npt.NDArray[np.float64], ts: npt.NDArray[np.float64], k: int) -> None:
        """Add points in arrival order (a convenience for tests; the window stage uses
        :meth:`add_summary`, which takes the group-by results)."""
        t_max = float(ts.max())
        last_pos = int(np.flatnonzero(ts == t_max)[-1])
        self.add_summary(
            count=int(values.size),
            total=exact_sums(values, np.zeros(1, np.intp))[0],
            low=float(values.min()),
            high=float(values.max()),
            last=float(values[last_pos]),
            last_ts=t_max,
            values=values,
            keys=None,
            k=k,
        )

    def add_summary(
        self,
        count: int,
        total: int,
        low: float,
        high: float,
        last: float,
        last_ts: float,
        values: npt.NDArray[np.float64],
        keys: npt.NDArray[np.int64] | None,
        k: int,
    ) -> None:
        """Fold in a group of ``count`` points (arrival order) summarized by the caller;
        ``total`` is their exact sum (see :func:`exact_sums`).

        ``keys`` are the values' sketch keys when the caller computed them and every value is
        positive; otherwise the sketch computes them.
        """
        sketch = self._sketch_for(count, k)
        self._add_exact(total)
        seen = self._fold(count, low, high, last, last_ts)
        if sketch is None:
            pass
        elif keys is not None and low > 0.0:
            sketch.add_positive_keys(keys)
        else:
            sketch.add(values)
        if k > 0:
            keep(self.sample, self.seed, values, seen, k)

    def add_point(self, value: float, ts: float, m: int, shift: int, key: int, k: int) -> None:
        """Fold in one point: ``add_summary`` of a group of one, in plain Python. The value is
        ``m << shift`` units of 2**-1074 (:func:`exact_parts`) and ``key`` is the sketch key
        of its magnitude."""
        sketch = self._sketch_for(1, k)
        seen = self._fold(1, value, value, value, ts)
        if m:
            self._add_scaled(m, EXACT_SHIFT - shift)
        if sketch is not None:
            sketch.add_one(value, key)
        if k > 0:
            keep_one(self.sample, self.seed, value, seen, k)

    def add_few(
        self,
        count: int,
        total: int,
        low: float,
        high: float,
        last: float,
        last_ts: float,
        values: list[float],
        keys: list[int],
        k: int,
    ) -> None:
        """``add_summary`` for a small group given as Python lists (``keys`` as in
        :meth:`add_point`): cheaper than numpy on a few values."""
        sketch = self._sketch_for(count, k)
        self._add_exact(total)
        seen = self._fold(count, low, high, last, last_ts)
        if sketch is None:
            pass
        elif low > 0.0:
            sketch.add_positive_key_list(keys)
        else:
            add_one = sketch.add_one
            for value, key in zip(values, keys, strict=True):
                add_one(value, key)
        if k > 0:
            if len(self.sample) + count <= k:  # room for all: Algorithm R keeps them all
                self.sample.extend(values)
                return
            for value in values:
                keep_one(self.sample, self.seed, value, seen, k)
                seen += 1

    def _fold(self, count: int, low: float, high: float, last: float, last_ts: float) -> int:
        """Fold a group's count, min, max and last into the cell (its sum is the caller's to
        add); return the count before it."""
        seen = self.count
        self.count = seen + count
        if low < self.min:
            self.min = low
        if high > self.max:
            self.max = high
        if last_ts >= self.last_ts:
            self.last, self.last_ts = last, last_ts
        return seen

    def to_series_aggregate(
        self,
        metric: str,
        labels: tuple[tuple[str, str], ...],
        quantiles: tuple[float, ...] | None = None,
    ) -> SeriesAggregate:
        """The closed window's aggregate of this series (quantiles clamped to [min, max]);
        ``quantiles`` are its sketch's p50, p95 and p99 when the caller has them. Built
        unvalidated: the cell computed every field from points validated as they came."""
        return unchecked(SeriesAggregate, self.series_fields(metric, labels, quantiles))

    def series_fields(
        self,
        metric: str,
        labels: tuple[tuple[str, str], ...],
        quantiles: tuple[float, ...] | None = None,
    ) -> dict[str, Any]:
        """The fields of :meth:`to_series_aggregate`."""
        if quantiles is None:
            p50, p95, p99 = self.full_sketch().quantiles(QUANTILES)
        else:
            p50, p95, p99 = quantiles
        low, high = self.min, self.max
        return {
            "metric": metric,
            "labels": dict(labels),
            "count": self.count,
            "sum": self.sum,
            "min": low,
            "max": high,
            "mean": self.mean,
            "last": self.last,
            "p50": low if p50 < low else high if p50 > high else p50,
            "p95": low if p95 < low else high if p95 > high else p95,
            "p99": low if p99 < low else high if p99 > high else p99,
            "sample": self.sample.tolist(),
        }

    def to_json(self) -> list[Any]:
        """The cell as JSON-able data, to compare cells by (its sketch: :meth:`full_sketch`)."""
        return [
            self.count,
            self.exact_sum,
            self.min,
            self.max,
            self.last,
            self.last_ts,
            self.seed,
            self.sample.tolist(),
            self.full_sketch().to_json(),
        ]
