"""The aggregates of series whose every value is at hand, for many series at once.

A window's series that got few points (no more than its sample holds) need no sketch: their
quantiles, like the rest of their aggregates, are computed from the values themselves, for all
such series of a closing window in one numpy pass, and are the same to the bit as those of a
:class:`~perfloop.streams.window_cell.WindowCell` that added the values one by one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from perfloop.streams.exact_sum import fsum_and_mean
from perfloop.streams.sketch import QuantileSketch

if TYPE_CHECKING:
    from perfloop.streams.window_cell import WindowCell

QUANTILES = (0.5, 0.95, 0.99)  # a window's p50, p95 and p99


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

    >>> from perfloop.streams.window_cell import WindowCell
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
        total, mean = fsum_and_mean(sample)
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


def held_quantiles(cells: list[WindowCell], alpha: float) -> list[tuple[float, ...]] | None:
    """p50, p95 and p99 of cells whose samples hold every value (no sketch of their own), as
    their sketches would give them, in one numpy pass over all their samples
    (:meth:`QuantileSketch.group_quantiles`); None when the caller should ask each cell's
    :meth:`WindowCell.full_sketch` instead.

    >>> from perfloop.streams.window_cell import WindowCell
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
