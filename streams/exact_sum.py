"""Exact sums of floats, rounded once when read.

Float addition is not associative, so a rounded running sum would depend on how the points
were split into batches, and a replay would not reproduce it. Every float64 is a whole
multiple of 2**-1074, so the exact sum of any floats is an integer count of that unit; this
module splits values into integer parts (:func:`exact_parts`), adds groups of them exactly in
numpy (:func:`exact_sums`) and rounds a sum once (:func:`rounded_sum`, :func:`sum_and_mean`).

>>> import numpy as np
>>> total = exact_sums(np.array([0.1, 0.2, 0.3]), np.array([0]))[0]
>>> rounded_sum(total), 0.1 + 0.2 + 0.3
(0.6, 0.6000000000000001)
"""

from __future__ import annotations

import math
import sys

import numpy as np
import numpy.typing as npt

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
    """The sum and the mean of ``count`` values whose exact sum is ``exact`` (units of
    2**-1074): the sum rounded once (saturated beyond the float range), the mean exact before
    rounding when the sum saturates.

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


def fsum_and_mean(values: list[float]) -> tuple[float, float]:
    """:func:`sum_and_mean` of ``values``: ``math.fsum`` rounds their exact sum once, as
    :func:`rounded_sum` does; the exact sum is built only when that overflows or saturates."""
    try:
        total = math.fsum(values)
    except OverflowError:
        total = sys.float_info.max
    if abs(total) == sys.float_info.max:
        return sum_and_mean(sum(map(exact_of, values)), len(values))
    return total, total / len(values)


def trailing_zeros(n: int) -> int:
    """How many times 2 divides ``n`` (not 0)."""
    return (n & -n).bit_length() - 1
