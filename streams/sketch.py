"""A mergeable quantile sketch with relative accuracy (DDSketch-style), vectorized with numpy.

A value ``v > 0`` falls in the log bucket ``k = ceil(log(v) / log(gamma))`` with
``gamma = (1 + alpha) / (1 - alpha)``; the bucket ``(gamma**(k-1), gamma**k]`` is reported as
``2 * gamma**k / (gamma + 1)``, within ``alpha`` of every value in it. Negative values go to a
mirrored store keyed by ``-v``; zeros are counted apart. Each store is an offset plus a dense
array of counts (``int16`` while a store holds fewer than 2**15 values, then ``int32``, and
``int64`` from 2**31 values on: a window's store is mostly small) and holds at
most ``max_buckets`` buckets: beyond that the lowest buckets are collapsed into one (only the
quantiles of the smallest magnitudes lose accuracy).

Quantiles follow the nearest-rank ("lower") convention: ``quantile(q)`` estimates the element
at sorted position ``floor(q * (n - 1))``, like ``numpy.percentile(..., method="lower")``.

>>> s = QuantileSketch()
>>> s.add([1.0, 2.0, 3.0, 4.0, 100.0])
>>> s.count
5
>>> round(s.quantile(0.5), 1), round(s.quantile(1.0), 0)
(3.0, 100.0)
>>> t = QuantileSketch.from_bytes(s.to_bytes())
>>> t.quantile(0.5) == s.quantile(0.5)
True
"""

from __future__ import annotations

import bisect
import functools
import itertools
import json
import math
from typing import Any

import numpy as np
import numpy.typing as npt

DEFAULT_ALPHA = 0.01
DEFAULT_MAX_BUCKETS = 2048
_ROOM = 8  # least spare buckets on each side when a store grows
_SMALL = 64  # stores of at most this many buckets are summed up in plain Python
_INT16_MAX = 2**15 - 1
_INT32_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1
_EMPTY: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
_EMPTY.flags.writeable = False


class _Store:
    """Counts per bucket key in a dense array starting at key ``offset`` (with some room on
    both sides); the occupied keys lie in ``[lo, hi]``, at most ``max_buckets`` wide. Only the
    occupied range decides anything, so a restored store behaves exactly like the original."""

    __slots__ = ("offset", "counts", "lo", "hi", "total", "limit", "max_buckets")

    def __init__(self, max_buckets: int) -> None:
        self.offset = 0
        self.counts: npt.NDArray[Any] = _EMPTY  # shared: never written while empty
        self.lo, self.hi, self.total = 0, -1, 0
        self.limit = _INT16_MAX  # the most values the counts' dtype can hold
        self.max_buckets = max_buckets

    def _widen(self, more: int) -> None:
        """Switch the counts to a wider dtype before ``more`` values could overflow them."""
        if self.total + more > self.limit:
            dtype, self.limit = _dtype_for(self.total + more)
            self.counts = self.counts.astype(dtype)

    def add_key(self, key: int) -> None:
        """``add_keys`` of one key, in plain Python (no numpy call while the key is in the
        occupied range)."""
        if not (self.lo <= key <= self.hi and self.total < self.limit):
            floor = self._cover(key, key)
            self._widen(1)
            if key < floor:  # collapsed into the lowest kept bucket
                key = floor
        self.counts[key - self.offset] += 1
        self.total += 1

    def add_key_list(self, keys: list[int]) -> None:
        """``add_keys`` of a few keys given as a list: the range is covered once, then each
        key is counted in plain Python (cheaper than numpy's per-call overhead)."""
        n = len(keys)
        kmin, kmax = min(keys), max(keys)
        if not (self.lo <= kmin and kmax <= self.hi and self.total + n <= self.limit):
            floor = self._cover(kmin, kmax)
            self._widen(n)
            if kmin < floor:  # collapsed into the lowest kept bucket
                keys = [key if key > floor else floor for key in keys]
        counts, offset = self.counts, self.offset
        for key in keys:
            counts[key - offset] += 1
        self.total += n

    def add_keys(self, keys: npt.NDArray[np.int64]) -> None:
        if keys.size == 0:
            return
        kmin, kmax = int(keys.min()), int(keys.max())
        floor = self._cover(kmin, kmax)
        self._widen(int(keys.size))
        if kmin < floor:  # collapse keys below the floor into the lowest kept bucket
            keys = np.maximum(keys, floor)
            kmin, kmax = floor, max(kmax, floor)
        start, width = kmin - self.offset, kmax - kmin + 1
        self.counts[start : start + width] += np.bincount(keys - kmin, minlength=width)
        self.total += int(keys.size)

    def add_counts(self, first: int, counts: npt.NDArray[np.int64]) -> None:
        nz = np.flatnonzero(counts)
        if nz.size == 0:
            return
        counts = counts[nz[0] : nz[-1] + 1]
        kmin = first + int(nz[0])
        floor = self._cover(kmin, kmin + counts.size - 1)
        total = int(counts.sum())
        self._widen(total)
        if kmin < floor:
            cut = min(floor - kmin, counts.size)
            self.counts[floor - self.offset] += int(counts[:cut].sum())
            counts, kmin = counts[cut:], floor
        start = kmin - self.offset
        self.counts[start : start + counts.size] += counts
        self.total += total

    def _cover(self, kmin: int, kmax: int) -> int:
        """Make room for keys ``kmin..kmax``, collapsing the lowest buckets if the occupied
        range would pass ``max_buckets``; return the lowest key kept."""
        lo, hi = (min(kmin, self.lo), max(kmax, self.hi)) if self.total else (kmin, kmax)
        lo = max(lo, hi - self.max_buckets + 1)
        end = self.offset + self.counts.size
        if lo < self.offset or hi >= end or (self.total and self.lo < lo):
            self._rebuild(lo, hi)
        self.lo, self.hi = lo, hi
        return lo

    def _rebuild(self, lo: int, hi: int) -> None:
        total = self.total
        # a store that grows again grows geometrically (few reallocations); a new one fits
        room = _ROOM + (hi - lo) // 8 if total else _ROOM
        offset = lo - room
        dtype, self.limit = _dtype_for(total)
        new: npt.NDArray[Any] = np.zeros(hi - lo + 1 + 2 * room, dtype)
        if total:
            src = self.counts[self.lo - self.offset : self.hi - self.offset + 1]
            src_lo = self.lo
            if src_lo < lo:  # collapse the occupied buckets below ``lo``
                cut = min(lo - src_lo, src.size)
                new[lo - offset] += int(src[:cut].sum())
                src, src_lo = src[cut:], src_lo + cut
                new[src_lo - offset : src_lo - offset + src.size] += src
            else:
                new[src_lo - offset : src_lo - offset + src.size] = src
        self.offset, self.counts = offset, new

    def occupied(self) -> npt.NDArray[np.int64]:
        return self.counts[self.lo - self.offset : self.hi - self.offset + 1]

    def cumulative(self, reverse: bool) -> list[int]:
        """Running totals of the occupied counts, from the lowest key (or the highest)."""
        counts = self.occupied()
        if counts.size <= _SMALL:  # a window's store, mostly: numpy's call costs more
            items = counts.tolist()
            return list(itertools.accumulate(reversed(items) if reverse else items))
        return np.cumsum(counts[::-1] if reverse else counts).tolist()

    def key_at(self, cumulative: list[int], rank: float, reverse: bool) -> int:
        """The key holding ``rank`` (0-based), given :meth:`cumulative` in the same order."""
        i = min(bisect.bisect_right(cumulative, rank), len(cumulative) - 1)
        return self.hi - i if reverse else self.lo + i

    def to_json(self) -> list[Any]:
        return [self.lo, self.occupied().tolist()] if self.total else [0, []]

    def load_json(self, data: list[Any]) -> None:
        self.load(int(data[0]), np.asarray(data[1], dtype=np.int64).reshape(-1))

    def load(self, lo: int, counts: npt.NDArray[np.int64]) -> None:
        """Hold exactly ``counts`` (its own copy) for the keys from ``lo`` on."""
        total = int(counts.sum(dtype=np.int64))
        dtype, self.limit = _dtype_for(total)
        self.counts = np.array(counts, dtype=dtype) if counts.size else _EMPTY
        self.offset = self.lo = lo
        self.hi = self.lo + self.counts.size - 1
        self.total = total


def _dtype_for(total: int) -> tuple[type[np.signedinteger[Any]], int]:
    """The narrowest counts dtype for a store of ``total`` values, and the most it holds."""
    if total <= _INT16_MAX:
        return np.int16, _INT16_MAX
    if total <= _INT32_MAX:
        return np.int32, _INT32_MAX
    return np.int64, _INT64_MAX


_NO_VALUES = _Store(DEFAULT_MAX_BUCKETS)  # shared by sketches without negative values: only read


@functools.cache
def _constants(alpha: float) -> tuple[float, float]:
    """``gamma`` and ``1 / log(gamma)`` for ``alpha`` (one pair of floats for all sketches)."""
    gamma = (1.0 + alpha) / (1.0 - alpha)
    return gamma, 1.0 / math.log(gamma)


class QuantileSketch:
    """Mergeable quantile sketch with relative accuracy ``alpha``.

    >>> a, b = QuantileSketch(), QuantileSketch()
    >>> a.add([0.0, -5.0, 10.0]); b.add([20.0, 30.0])
    >>> a.merge(b)
    >>> a.count, round(a.quantile(0.0), 1), a.quantile(0.25)
    (5, -5.0, 0.0)
    """

    __slots__ = ("alpha", "max_buckets", "zero_count", "_pos", "_neg", "_gamma", "_inv_log_gamma")

    def __init__(
        self, alpha: float = DEFAULT_ALPHA, max_buckets: int = DEFAULT_MAX_BUCKETS
    ) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha: {alpha!r} must be between 0 and 1")
        if max_buckets < 2:
            raise ValueError(f"max_buckets: {max_buckets!r} must be at least 2")
        self.alpha = alpha
        self.max_buckets = max_buckets
        self.zero_count = 0
        self._pos = _Store(max_buckets)
        self._neg = _NO_VALUES  # a store of its own once a negative value comes
        self._gamma, self._inv_log_gamma = _constants(alpha)

    @property
    def count(self) -> int:
        """How many values were added (or merged in)."""
        return self.zero_count + self._pos.total + self._neg.total

    def keys(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """The bucket key of each (non-zero) value's magnitude."""
        return np.ceil(np.log(np.abs(values)) * self._inv_log_gamma).astype(np.int64)

    def add(self, values: npt.ArrayLike) -> None:
        """Add finite values (one numpy pass; non-finite values are the caller's to reject)."""
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
        if arr.size == 0:
            return
        if float(arr.min()) > 0.0:
            self._pos.add_keys(self.keys(arr))
            return
        pos = arr[arr > 0.0]
        neg = arr[arr < 0.0]
        self.zero_count += int(arr.size - pos.size - neg.size)
        if pos.size:
            self._pos.add_keys(self.keys(pos))
        if neg.size:
            self._negatives().add_keys(self.keys(neg))

    def add_one(self, value: float, key: int) -> None:
        """Add one finite ``value`` whose magnitude has bucket ``key`` (see :meth:`keys`;
        ignored for zero): ``add([value])`` without numpy's per-call overhead.

        >>> s, t = QuantileSketch(), QuantileSketch()
        >>> for v in (3.0, -2.0, 0.0, 7.5):
        ...     s.add_one(v, int(s.keys(np.array([v or 1.0]))[0]))
        >>> t.add([3.0, -2.0, 0.0, 7.5])
        >>> s.to_json() == t.to_json()
        True
        """
        if value > 0.0:
            self._pos.add_key(key)
        elif value < 0.0:
            self._negatives().add_key(key)
        else:
            self.zero_count += 1

    def add_positive_key_list(self, keys: list[int]) -> None:
        """Add a few positive values given by their :meth:`keys`, as a list.

        >>> s, t = QuantileSketch(), QuantileSketch()
        >>> s.add_positive_key_list([int(k) for k in s.keys(np.array([3.0, 7.5, 3.1]))])
        >>> t.add([3.0, 7.5, 3.1])
        >>> s.to_json() == t.to_json()
        True
        """
        self._pos.add_key_list(keys)

    def add_positive_keys(self, keys: npt.NDArray[np.int64]) -> None:
        """Add positive values given by their :meth:`keys` (lets callers compute keys once)."""
        if keys.size == 1:
            self._pos.add_key(int(keys[0]))
        else:
            self._pos.add_keys(keys)

    def merge(self, other: QuantileSketch) -> None:
        """Add every value of ``other`` (same ``alpha`` required)."""
        if other.alpha != self.alpha:
            raise ValueError(
                f"alpha: cannot merge a sketch of alpha {other.alpha} into one of {self.alpha}"
            )
        self.zero_count += other.zero_count
        self._pos.add_counts(other._pos.lo, other._pos.occupied())
        if other._neg.total:
            self._negatives().add_counts(other._neg.lo, other._neg.occupied())

    def _negatives(self) -> _Store:
        if self._neg is _NO_VALUES:
            self._neg = _Store(self.max_buckets)
        return self._neg

    def _value(self, key: int) -> float:
        return 2.0 * self._gamma**key / (self._gamma + 1.0)

    def quantile(self, q: float) -> float:
        """The estimated value at sorted position ``floor(q * (count - 1))``; nan if empty."""
        return self.quantiles((q,))[0]

    def quantiles(self, qs: tuple[float, ...] | list[float]) -> list[float]:
        """``quantile(q)`` for each of ``qs`` (each store's cumulative counts built once)."""
        for q in qs:
            if not 0.0 <= q <= 1.0:
                raise ValueError(f"q: {q!r} must be between 0 and 1")
        n_neg, n_pos = self._neg.total, self._pos.total
        n = n_neg + self.zero_count + n_pos
        if n == 0:
            return [math.nan] * len(qs)
        cum_neg: list[int] | None = None
        cum_pos: list[int] | None = None
        out = []
        for q in qs:
            rank = float(math.floor(q * (n - 1)))
            if rank < n_neg:
                if cum_neg is None:
                    cum_neg = self._neg.cumulative(reverse=True)
                out.append(-self._value(self._neg.key_at(cum_neg, rank, reverse=True)))
            elif rank < n_neg + self.zero_count:
                out.append(0.0)
            else:
                if cum_pos is None:
                    cum_pos = self._pos.cumulative(reverse=False)
                rank -= n_neg + self.zero_count
                out.append(self._value(self._pos.key_at(cum_pos, rank, reverse=False)))
        return out

    def group_quantiles(
        self, values: npt.NDArray[np.float64], sizes: npt.NDArray[np.int64], qs: tuple[float, ...]
    ) -> npt.NDArray[np.float64] | None:
        """For consecutive groups of ``values`` (``sizes``, none empty), what
        :meth:`quantiles` would give for a sketch of each group alone (with this sketch's
        ``alpha``), in one numpy pass: a row a group, a column a quantile.

        A quantile at rank ``r`` is the value of the bucket holding the ``r``-th value,
        negatives first (largest magnitude first), then zeros, then positives: so sorting
        each group's keys in that order and indexing gives every group's quantiles at once.
        None when a group's keys span more than ``max_buckets`` (its sketch would merge the
        lowest).

        >>> values, sizes = np.array([5.0, -2.0, 0.0, 40.0, 7.0, 1.5]), np.array([5, 1])
        >>> a, b = QuantileSketch(), QuantileSketch()
        >>> a.add(values[:5]); b.add(values[5:])
        >>> a.group_quantiles(values, sizes, (0.5, 0.99)).tolist() == [a.quantiles((0.5, 0.99)),
        ...                                                            b.quantiles((0.5, 0.99))]
        True
        """
        sign = np.sign(values).astype(np.int64)  # -1, 0, 1: the order of the stores
        keys = self.keys(np.where(sign == 0, 1.0, values))
        starts = np.cumsum(sizes) - sizes
        if int(keys.max()) - int(keys.min()) >= self.max_buckets:  # maybe one group spans so
            wide = np.maximum.reduceat(keys, starts) - np.minimum.reduceat(keys, starts)
            if bool((wide >= self.max_buckets).any()):
                return None
        owner = np.repeat(np.arange(sizes.size), sizes)
        order = np.lexsort((sign * keys, sign, owner))
        at = order[starts[:, None] + np.floor(np.outer(sizes - 1, qs)).astype(np.int64)]
        # each distinct bucket's value computed once, as quantiles() computes it
        used, where = np.unique(keys[at].ravel(), return_inverse=True)
        value = np.array([self._value(key) for key in used.tolist()], dtype=np.float64)
        signs = sign[at]
        return np.where(signs == 0, 0.0, signs * value[where].reshape(at.shape))

    def to_json(self) -> dict[str, Any]:
        """A small JSON-able form: non-empty bucket ranges as ``[offset, counts]``."""
        return {
            "alpha": self.alpha,
            "max_buckets": self.max_buckets,
            "zero": self.zero_count,
            "pos": self._pos.to_json(),
            "neg": self._neg.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QuantileSketch:
        """The sketch that :meth:`to_json` described."""
        sketch = cls(float(data["alpha"]), int(data["max_buckets"]))
        sketch.zero_count = int(data["zero"])
        sketch._pos.load_json(data["pos"])
        if data["neg"][1]:
            sketch._negatives().load_json(data["neg"])
        return sketch

    def state(self) -> tuple[int, int, npt.NDArray[np.int64], int, npt.NDArray[np.int64]]:
        """``(zero count, lowest positive key, its counts, lowest negative key, its counts)``:
        the occupied buckets, as :meth:`from_state` takes them."""
        pos, neg = self._pos, self._neg
        return self.zero_count, pos.lo, pos.occupied(), neg.lo, neg.occupied()

    @classmethod
    def from_state(
        cls,
        alpha: float,
        max_buckets: int,
        zero: int,
        pos_lo: int,
        pos: npt.NDArray[np.int64],
        neg_lo: int,
        neg: npt.NDArray[np.int64],
    ) -> QuantileSketch:
        """The sketch whose :meth:`state` that was (the arrays are copied).

        >>> s = QuantileSketch(); s.add([-2.0, 0.0, 3.0, 3.5])
        >>> t = QuantileSketch.from_state(s.alpha, s.max_buckets, *s.state())
        >>> t.to_json() == s.to_json()
        True
        """
        sketch = cls(alpha, max_buckets)
        sketch.zero_count = zero
        if pos.size:
            sketch._pos.load(pos_lo, pos)
        if neg.size:
            sketch._negatives().load(neg_lo, neg)
        return sketch

    def to_bytes(self) -> bytes:
        """:meth:`to_json` as compact UTF-8 JSON."""
        return json.dumps(self.to_json(), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> QuantileSketch:
        """The sketch that :meth:`to_bytes` wrote."""
        return cls.from_json(json.loads(data))
