"""The counts of a quantile sketch's buckets: a dense array from an offset, narrow while small.

A store counts values per bucket key in a dense array starting at key ``offset``, in
``int16`` while it holds fewer than 2**15 values, then ``int32``, and ``int64`` from 2**31
values on (a window's store is mostly small), and holds at most ``max_buckets`` buckets:
beyond that the lowest buckets are collapsed into one.

>>> store = BucketStore(max_buckets=4)
>>> store.add_key_list([3, 3, 5, 9])  # keys 3 and 5 collapse into 6, the lowest kept
>>> store.lo, store.occupied().tolist(), store.total
(6, [3, 0, 0, 1], 4)
"""

from __future__ import annotations

import bisect
import itertools
from typing import Any

import numpy as np
import numpy.typing as npt

_ROOM = 8  # least spare buckets on each side when a store grows
_SMALL = 64  # stores of at most this many buckets are summed up in plain Python
_INT16_MAX = 2**15 - 1
_INT32_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1
_EMPTY: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
_EMPTY.flags.writeable = False


class BucketStore:
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
