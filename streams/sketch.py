"""A mergeable quantile sketch with relative accuracy (DDSketch-style), vectorized with numpy.

A value ``v > 0`` falls in the log bucket ``k = ceil(log(v) / log(gamma))`` with
``gamma = (1 + alpha) / (1 - alpha)``; the bucket ``(gamma**(k-1), gamma**k]`` is reported as
``2 * gamma**k / (gamma + 1)``, within ``alpha`` of every value in it. Negative values go to a
mirrored store keyed by ``-v``; zeros are counted apart. Each store
(:class:`~perfloop.streams.sketch_store.BucketStore`) is an offset plus a dense array of counts
and holds at most ``max_buckets`` buckets: beyond that the lowest buckets are collapsed into
one (only the quantiles of the smallest magnitudes lose accuracy).

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

import functools
import json
import math
from typing import Any

import numpy as np
import numpy.typing as npt

from perfloop.streams.sketch_store import BucketStore

DEFAULT_ALPHA = 0.01
DEFAULT_MAX_BUCKETS = 2048
# shared by sketches without negative values: only read
_NO_VALUES = BucketStore(DEFAULT_MAX_BUCKETS)


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
        self._pos = BucketStore(max_buckets)
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

    def _negatives(self) -> BucketStore:
        if self._neg is _NO_VALUES:
            self._neg = BucketStore(self.max_buckets)
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
