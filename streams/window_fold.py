"""Adding a partition's held points to their window cells, a group at a time.

The points of one fold are ordered by (series, window) with one stable sort
(:func:`grouped`); numpy's ``reduceat`` then summarizes each (series, window) group, and
Python loops once per group, not per point, to fold it into its
:class:`~perfloop.streams.window_cell.WindowCell`: a group of one point, or of a few, goes
through the cell's plain-Python paths, where numpy's per-call cost would dominate. When the
windows close right after, the groups that have no cell and fit the sample skip the cells
(:func:`finish_groups`).
"""

from __future__ import annotations

from array import array
from typing import Any

import numpy as np
import numpy.typing as npt

from perfloop.schemas.config import WindowsConfig
from perfloop.streams.exact_sum import exact_parts, exact_sums
from perfloop.streams.group_aggregates import group_fields, last_positions
from perfloop.streams.reservoir import stable_seed
from perfloop.streams.sketch import QuantileSketch
from perfloop.streams.window_cell import WindowCell

_FEW = 8  # groups of at most this many points are added in plain Python, not numpy

Points = tuple[
    npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]
]  # series ids, windows, event times, values
OpenCells = dict[int, dict[int, WindowCell]]  # window -> series id -> cell
Finished = dict[int, dict[int, dict[str, Any]]]  # window -> series id -> aggregate fields


def grouped(
    gid: npt.NDArray[np.int64],
    w: npt.NDArray[np.int64],
    ts: npt.NDArray[np.float64],
    values: npt.NDArray[np.float64],
) -> Points:
    """The points ordered by (series, window), in arrival order within each group."""
    w_min = int(w.min())
    gkey = gid * (int(w.max()) - w_min + 1) + (w - w_min)
    if bool((gkey[1:] >= gkey[:-1]).all()):
        return gid, w, ts, values
    order = np.argsort(gkey, kind="stable")
    return gid[order], w[order], ts[order], values[order]


def group_starts(gid: npt.NDArray[np.int64], w: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    """Where each (series, window) group of :func:`grouped` points starts."""
    return np.flatnonzero(np.concatenate(([True], (gid[1:] != gid[:-1]) | (w[1:] != w[:-1]))))


def finish_groups(
    points: Points, open_: OpenCells, config: WindowsConfig
) -> tuple[Finished, Points | None]:
    """The aggregates of the closing ``points``' groups that have no cell in ``open_`` and fit
    the sample (:func:`~perfloop.streams.group_aggregates.group_fields`), and the points left
    for cells (None when there are none)."""
    points = grouped(*points)
    gid, w, ts, values = points
    starts = group_starts(gid, w)
    counts = np.diff(np.append(starts, gid.size))
    fits = counts <= config.sample_size
    if any(wi in open_ for wi in np.unique(w).tolist()):
        pairs = zip(w[starts].tolist(), gid[starts].tolist(), strict=True)
        fits &= np.array([si not in open_.get(wi, ()) for wi, si in pairs], dtype=bool)
    if not fits.any():
        return {}, points
    rest: Points | None = None
    if not fits.all():
        mine = np.repeat(fits, counts)
        rest = (gid[~mine], w[~mine], ts[~mine], values[~mine])
        gid, w, ts, values, counts = gid[mine], w[mine], ts[mine], values[mine], counts[fits]
        starts = np.cumsum(counts) - counts
    fields = group_fields(values, ts, starts, counts, config.sketch_alpha)
    if fields is None:  # the quantiles need each cell's own sketch
        return {}, points
    finished: Finished = {}
    rows = zip(w[starts].tolist(), gid[starts].tolist(), fields, strict=True)
    for wi, si, one in rows:
        finished.setdefault(wi, {})[si] = one
    return finished, rest


def add_to_cells(
    points: Points,
    windows: OpenCells,
    prefixes: list[str],
    proto: QuantileSketch,
    config: WindowsConfig,
    closing: bool = False,
) -> None:
    """Add ``points`` to their cells in ``windows``, making the cells they need (seeded from
    their series' ``prefixes``; ``proto`` computes sketch keys). With ``closing`` (their
    windows close right after), a new cell that its group fits in gets no seed: only a
    sample that overflows uses it."""
    gid, w, ts, values = grouped(*points)
    n = gid.size
    starts = group_starts(gid, w)
    counts = np.diff(np.append(starts, n))
    mag = np.abs(values)
    mag[mag == 0.0] = 1.0
    keys = proto.keys(mag)
    k = config.sample_size
    alpha = config.sketch_alpha

    def cell_of(wi: int, si: int) -> WindowCell:
        cells = windows.get(wi)
        if cells is None:
            cells = windows[wi] = {}
        cell = cells.get(si)
        if cell is None:
            cell = cells[si] = WindowCell.empty(stable_seed(wi, prefix=prefixes[si]), alpha)
        return cell

    if starts.size == n:  # one point a group (single-point messages): plain Python
        m, shift = exact_parts(values)
        rows = zip(
            w.tolist(),
            gid.tolist(),
            values.tolist(),
            ts.tolist(),
            m.tolist(),
            shift.tolist(),
            keys.tolist(),
            strict=True,
        )
        cells: dict[int, WindowCell] | None = None
        cell_wi = None
        for wi, si, value, t, mi, sh, key in rows:
            if wi != cell_wi:
                cells, cell_wi = windows.get(wi), wi
            cell = None if cells is None else cells.get(si)
            if cell is None:
                cell = cell_of(wi, si)
                cells = windows[wi]
            cell.add_point(value, t, mi, sh, key, k)
        return
    sums = exact_sums(values, starts)
    lows = np.minimum.reduceat(values, starts)
    highs = np.maximum.reduceat(values, starts)
    t_max, last_pos = last_positions(ts, starts, counts)
    small = counts <= _FEW
    few = bool(small.any())
    value_list = values.tolist() if few else []
    key_list = keys.tolist() if few else []
    restore = WindowCell.restore
    bounds = np.append(starts, n).tolist()
    rows2 = zip(
        w[starts].tolist(),
        gid[starts].tolist(),
        counts.tolist(),
        sums,
        lows.tolist(),
        highs.tolist(),
        values[last_pos].tolist(),
        t_max.tolist(),
        small.tolist(),
        strict=True,
    )
    for j, (wi, si, count, total, low, high, last, last_ts, is_small) in enumerate(rows2):
        s, e = bounds[j], bounds[j + 1]
        cells = windows.get(wi)
        if cells is None:
            cells = windows[wi] = {}
        cell = cells.get(si)
        if cell is None:
            if count <= k:  # a new cell whose sample takes the whole group: built as is
                seed = 0 if closing else stable_seed(wi, prefix=prefixes[si])
                held = array("d", value_list[s:e] if is_small else values[s:e].tobytes())
                cells[si] = restore(count, total, low, high, last, last_ts, seed, held, None, alpha)
                continue
            cell = cells[si] = WindowCell.empty(stable_seed(wi, prefix=prefixes[si]), alpha)
        if is_small:
            cell.add_few(count, total, low, high, last, last_ts, value_list[s:e], key_list[s:e], k)
        else:
            cell.add_summary(count, total, low, high, last, last_ts, values[s:e], keys[s:e], k)
