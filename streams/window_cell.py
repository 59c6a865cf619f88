"""The running aggregate of one series in one window, and its deterministic sample.

A :class:`WindowCell` keeps count, the exact sum, min, max, the last value by event time (ties
go to the later arrival), a :class:`~perfloop.streams.sketch.QuantileSketch`, and a reservoir sample
of at most ``k`` raw values. While the sample still holds every value the cell has seen (at most
``k`` of them), the cell keeps no sketch: the sketch of those values is derived from the sample
when it is needed - when a value past the ``k``-th comes, or for the quantiles of the closed
window, computed for all such cells of a window at once (:func:`held_quantiles`) - and is
the same sketch that adding the values one by one would have built.

The reservoir is Algorithm R driven by a counter-based hash (splitmix64) of the cell's seed
and each value's position in the cell, so it needs no random state and is the same for the
same input order, across processes and restarts.

The sum is kept exactly and rounded once when read: float addition is not associative, so a
rounded running sum would depend on how the points were split into batches, and a replay would
not reproduce it. Every float64 is a whole multiple of 2**-1074, so the exact sum is an integer
count of that unit (:attr:`WindowCell.exact_sum`); a cell holds it as ``sum_m / 2**sum_scale``
with ``sum_scale`` only as large as its finest value needs, which keeps the integer small.

>>> cell = WindowCell.empty(seed=1, alpha=0.01)
>>> import numpy as np
>>> cell.add(np.array([3.0, 1.0, 2.0]), np.array([10.0, 12.0, 11.0]), k=4)
>>> cell.count, cell.min, cell.max, cell.last, cell.sample.tolist()
(3, 1.0, 3.0, 1.0, [3.0, 1.0, 2.0])
"""

from __future__ import annotations

import hashlib
import math
import sys
from array import array
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from perfloop.schemas.messages import SeriesAggregate
from perfloop.streams.sketch import QuantileSketch

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_U30, _U27, _U31, _U11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)


def stable_seed(*parts: object, prefix: str = "") -> int:
    """A 63-bit seed from ``parts``, the same in every process (unlike ``hash``); with
    ``prefix``, from the parts of :func:`seed_prefix` followed by these.

    >>> stable_seed("api", "p95", 7) == stable_seed(7, prefix=seed_prefix("api", "p95"))
    True
    """
    text = (prefix + "\x1f".join(map(str, parts))).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


def seed_prefix(*parts: object) -> str:
    """What :func:`stable_seed` hashes first for ``parts`` when more parts follow them."""
    return "".join(f"{part}\x1f" for part in parts)


def uniforms(seed: int, start: int, stop: int) -> npt.NDArray[np.float64]:
    """Uniform numbers in [0, 1) for positions ``start..stop-1`` of stream ``seed``.

    >>> u = uniforms(7, 0, 5)
    >>> bool(((0 <= u) & (u < 1)).all()), float(uniforms(7, 2, 3)[0]) == float(u[2])
    (True, True)
    """
    x = np.arange(start, stop, dtype=np.uint64) + np.uint64(seed)
    x = (x ^ (x >> _U30)) * _M1
    x = (x ^ (x >> _U27)) * _M2
    x = x ^ (x >> _U31)
    return (x >> _U11).astype(np.float64) * (2.0**-53)


_MASK = (1 << 64) - 1
EXACT_SHIFT = 1074  # sums are kept as integers in units of 2**-1074
_EXACT_UNIT = 1 << EXACT_SHIFT
_LOW_BITS = np.int64((1 << 26) - 1)


def exact_parts(
    values: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Integers ``m`` and ``shift >= 0`` with ``value == m * 2**(shift - 1074)`` exactly, so
    that ``m << shift`` is the value in units of 2**-1074 (see :func:`exact_of`).

    >>> m, shift = exact_parts(np.array([0.5, -3.0, 5e-324]))
    >>> [int(a) << int(b) == exact_of(v) for a, b, v in zip(m, shift, [0.5, -3.0, 5e-324])]
    [True, True, True]
    """
    mant, exp = np.frexp(values)
    m = (mant * 2.0**53).astype(np.int64)  # exact: value = m * 2**(exp - 53)
    shift = exp.astype(np.int64) + (EXACT_SHIFT - 53)
    tiny = shift < 0  # subnormals: their low mantissa bits are zero, shifting right is exact
    if tiny.any():
        m[tiny] >>= -shift[tiny]
        shift[tiny] = 0
    return m, shift


def exact_sums(values: npt.NDArray[np.float64], starts: npt.NDArray[np.intp]) -> list[int]:
    """The exact sums of ``values[starts[i]:starts[i + 1]]`` in units of 2**-1074.

    Vectorized: each value is split into an integer mantissa and an exponent; mantissas of
    one (group, exponent) are summed as two halves of at most 27 bits (exact in float64 for
    fewer than 2**26 values, or as int64 when sorted), and Python only adds one big integer
    per distinct (group, exponent).

    >>> v = np.array([0.1, 0.2, 0.3, 1e300, -1e300, 5e-324])
    >>> [t / 2**1074 for t in exact_sums(v, np.array([0, 3]))]  # 0.1 + 0.2 + 0.3 rounds once
    [0.6, 5e-324]
    """
    n = values.size
    if n == 0:
        return []
    m, shift = exact_parts(values)
    if starts.size == n:  # one value a group
        return [a << b for a, b in zip(m.tolist(), shift.tolist(), strict=True)]
    counts = np.diff(np.append(starts, n))
    group = np.repeat(np.arange(starts.size, dtype=np.int64), counts)
    low = int(shift.min())
    span = int(shift.max()) - low + 1
    key = group * span + (shift - low)
    bins = starts.size * span
    if bins <= 4 * n + 4096 and n < 2**26:
        # float64 sums of integers below 2**27, fewer than 2**26 of them: exact
        high = np.bincount(key, weights=m >> 26, minlength=bins)
        lows = np.bincount(key, weights=m & _LOW_BITS, minlength=bins)
        first = np.flatnonzero((high != 0.0) | (lows != 0.0))
        keys = first.tolist()
        high_sums = high[first].astype(np.int64).tolist()
        low_sums = lows[first].astype(np.int64).tolist()
    else:
        order = np.argsort(key, kind="stable")
        key, m = key[order], m[order]
        first = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
        keys = key[first].tolist()
        high_sums = np.add.reduceat(m >> 26, first).tolist()
        low_sums = np.add.reduceat(m & _LOW_BITS, first).tolist()
    out = [0] * starts.size
    for k, hi, lo in zip(keys, high_sums, low_sums, strict=True):
        g, e = divmod(k, span)
        out[g] += ((hi << 26) + lo) << (e + low)
    return out


def exact_of(value: float) -> int:
    """``value`` in units of 2**-1074, exactly.

    >>> exact_of(0.5) == 2**1073
    True
    """
    num, den = value.as_integer_ratio()
    return num * (_EXACT_UNIT // den)


def sum_and_mean(exact: int, count: int) -> tuple[float, float]:
    """:attr:`WindowCell.sum` and :attr:`WindowCell.mean` of ``count`` values whose exact sum
    is ``exact`` (units of 2**-1074): the sum rounded once (saturated beyond the float range),
    the mean exact before rounding when the sum saturates.

    >>> sum_and_mean(exact_of(1e308) * 2, 2)
    (1.7976931348623157e+308, 1e+308)
    """
    total = rounded_sum(exact)
    if abs(total) == sys.float_info.max:
        return total, exact / (count * _EXACT_UNIT)
    return total, total / count


def rounded_sum(exact: int) -> float:
    """An exact sum (units of 2**-1074) rounded once; beyond the float range (finite values
    can add up past it) saturated at the largest float of its sign."""
    try:
        return exact / _EXACT_UNIT
    except OverflowError:
        return sys.float_info.max if exact > 0 else -sys.float_info.max


def last_positions(
    ts: npt.NDArray[np.float64], starts: npt.NDArray[np.intp], counts: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Per consecutive group of points (in arrival order): the greatest event time, and the
    position of the last point to arrive with it (the group's ``last``)."""
    t_max = np.maximum.reduceat(ts, starts)
    at_max = np.where(ts == np.repeat(t_max, counts), np.arange(ts.size), -1)
    return t_max, np.maximum.reduceat(at_max, starts)


def group_fields(
    values: npt.NDArray[np.float64],
    ts: npt.NDArray[np.float64],
    starts: npt.NDArray[np.intp],
    counts: npt.NDArray[np.int64],
    alpha: float,
) -> list[dict[str, Any]] | None:
    """What :meth:`WindowCell.series_fields` gives (``metric`` and ``labels`` left None) for each
    consecutive group of points that is all of a closing cell and fits its sample (arrival
    order within a group), computed for all groups at once, without building the cells; None
    when the quantiles need each group's own sketch (see :func:`held_quantiles`).

    >>> values, ts = np.array([3.0, 1.0, 2.0, 8.0]), np.array([10.0, 12.0, 11.0, 5.0])
    >>> cell = WindowCell.empty(seed=1, alpha=0.01)
    >>> cell.add(values[:3], ts[:3], k=4)
    >>> fields = group_fields(values, ts, np.array([0, 3]), np.array([3, 1]), 0.01)
    >>> fields[0] == {**cell.series_fields("m", ()), "metric": None, "labels": None}
    True
    """
    quantiles = QuantileSketch(alpha).group_quantiles(values, counts, QUANTILES)
    if quantiles is None:
        return None
    lows = np.minimum.reduceat(values, starts).tolist()
    highs = np.maximum.reduceat(values, starts).tolist()
    lasts = values[last_positions(ts, starts, counts)[1]].tolist()
    flat = values.tolist()
    bounds = np.append(starts, values.size).tolist()
    out = []
    rows = zip(counts.tolist(), lows, highs, lasts, quantiles.tolist(), strict=True)
    for j, (count, low, high, last, (p50, p95, p99)) in enumerate(rows):
        sample = flat[bounds[j] : bounds[j + 1]]
        total, mean = _sum_and_mean_of(sample)
        out.append(
            {
                "metric": None,  # the caller's to name: keys in the schema's order
                "labels": None,
                "count": count,
                "sum": total,
                "min": low,
                "max": high,
                "mean": mean,
                "last": last,
                "p50": low if p50 < low else high if p50 > high else p50,
                "p95": low if p95 < low else high if p95 > high else p95,
                "p99": low if p99 < low else high if p99 > high else p99,
                "sample": sample,
            }
        )
    return out


def _sum_and_mean_of(values: list[float]) -> tuple[float, float]:
    """:func:`sum_and_mean` of ``values``: ``math.fsum`` rounds their exact sum once, as
    :attr:`WindowCell.sum` does; the exact sum is built only when that overflows or
    saturates."""
    try:
        total = math.fsum(values)
    except OverflowError:
        total = sys.float_info.max
    if abs(total) == sys.float_info.max:
        return sum_and_mean(sum(map(exact_of, values)), len(values))
    return total, total / len(values)


def uniform(seed: int, position: int) -> float:
    """``uniforms(seed, position, position + 1)[0]`` in plain Python (for single points).

    >>> uniform(7, 3) == float(uniforms(7, 0, 5)[3])
    True
    """
    x = (position + seed) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    x ^= x >> 31
    return float(x >> 11) * (2.0**-53)


_NO_SCALE = -4096  # the scale of an empty sum: below any value's
QUANTILES = (0.5, 0.95, 0.99)  # a window's p50, p95 and p99


def held_quantiles(cells: list[WindowCell], alpha: float) -> list[tuple[float, ...]] | None:
    """p50, p95 and p99 of cells whose samples hold every value (no sketch of their own), as
    their sketches would give them, in one numpy pass over all their samples
    (:meth:`QuantileSketch.group_quantiles`); None when the caller should ask each cell's
    :meth:`WindowCell.full_sketch` instead.

    >>> cell = WindowCell.empty(seed=1, alpha=0.01)
    >>> cell.add(np.array([5.0, -2.0, 0.0, 40.0, 7.0]), np.arange(5.0), k=8)
    >>> held_quantiles([cell], 0.01) == [tuple(cell.full_sketch().quantiles(QUANTILES))]
    True
    """
    if not cells:
        return []
    sizes = np.fromiter((cell.count for cell in cells), np.int64, len(cells))
    if not bool((sizes > 0).all()):
        return None
    values = np.frombuffer(b"".join(cell.sample for cell in cells), dtype=np.float64)
    rows = QuantileSketch(alpha).group_quantiles(values, sizes, QUANTILES)
    return None if rows is None else [tuple(row) for row in rows.tolist()]


def _trailing_zeros(n: int) -> int:
    """How many times 2 divides ``n`` (not 0)."""
    return (n & -n).bit_length() - 1


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
        zeros = _trailing_zeros(m)
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
            zeros = _trailing_zeros(total)
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
            self._sample(values, seen, k)

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
            self._sample_one(value, seen, k)

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
                self._sample_one(value, seen, k)
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

    def _sample_one(self, value: float, seen: int, k: int) -> None:
        """Algorithm R for the value at position ``seen``, without numpy."""
        sample = self.sample
        if len(sample) < k:
            sample.append(value)
            return
        slot = int(uniform(self.seed, seen) * (seen + 1))
        if slot < k:
            sample[slot] = value

    def _sample(self, values: npt.NDArray[np.float64], seen: int, k: int) -> None:
        sample = self.sample
        room = k - len(sample)
        if room > 0:
            sample.frombytes(values[:room].astype(np.float64, copy=False).tobytes())
            values, seen = values[room:], seen + room
        n = values.size
        if n == 0:
            return
        if n == 1:  # without numpy's per-call overhead
            self._sample_one(float(values[0]), seen, k)
            return
        pos = np.arange(seen, seen + n)
        slots = (uniforms(self.seed, seen, seen + n) * (pos + 1)).astype(np.int64)
        hit = np.flatnonzero(slots < k)
        for slot, value in zip(slots[hit].tolist(), values[hit].tolist(), strict=True):
            sample[slot] = value  # in arrival order: the last write to a slot wins

    def to_series_aggregate(
        self,
        metric: str,
        labels: tuple[tuple[str, str], ...],
        quantiles: tuple[float, ...] | None = None,
    ) -> SeriesAggregate:
        """The closed window's aggregate of this series (quantiles clamped to [min, max]);
        ``quantiles`` are its sketch's p50, p95 and p99 when the caller has them."""
        return SeriesAggregate.model_validate(self.series_fields(metric, labels, quantiles))

    def series_fields(
        self,
        metric: str,
        labels: tuple[tuple[str, str], ...],
        quantiles: tuple[float, ...] | None = None,
    ) -> dict[str, Any]:
        """The fields of :meth:`to_series_aggregate`, unvalidated: a window validates all
        of its series in one call."""
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
