"""Event-time tumbling windows of one Kafka partition.

A point at event time ``ts`` belongs to the window ``[start, start + length)`` with
``start = floor(ts / length) * length``. The partition's watermark is the greatest event time
seen minus the allowed lateness (and never goes back); a window closes when the watermark
reaches its end. A point is judged against the watermark of the points that arrived before it
(in record order), so the result does not depend on how records are grouped into batches: a
point whose window has already closed is LATE - returned with its record and counted, never
added. An idle partition (no points for ``idle_timeout`` seconds of wall clock) moves its
watermark on as if event time had kept pace with the wall clock.

Updates are vectorized: a batch's points are held per window, in arrival order, until the
window closes (or ``PENDING_POINTS`` are held, or the state is saved); then one stable sort by
(series, window) and numpy ``reduceat`` add them to the cells
(:mod:`perfloop.streams.window_fold`), so Python loops once per (series, window) group however
many batches its points came in. A window closing with all of a series' points still held,
few enough for its sample, needs no cell at all: those series' aggregates are computed
together from the held points (:func:`~perfloop.streams.group_aggregates.group_fields`), the
same to the bit as a cell's. A closed window becomes one message per service
(:mod:`perfloop.streams.window_build`).

>>> from perfloop.streams.decoded import DecodedBatch, SeriesKey
>>> from perfloop.schemas.config import WindowsConfig
>>> def batch(ts, values):
...     n = len(ts)
...     return DecodedBatch([SeriesKey("api", "latency_ms", ())], np.zeros(n, np.int32),
...                         np.array(ts, float), np.array(values, float),
...                         np.arange(n, dtype=np.int32), [(0, i) for i in range(n)], [])
>>> pw = PartitionWindows(WindowsConfig(length_s=10, lateness_s=2))
>>> pw.update(batch([1_700_000_001.0, 1_700_000_005.0], [10.0, 30.0])).closed
[]
>>> out = pw.update(batch([1_700_000_012.0, 1_700_000_003.0], [50.0, 99.0]))
>>> [(w.window_id, w.series[0].count, w.series[0].max) for w in out.closed]
[('api:1700000000000', 2, 30.0)]
>>> [(r.offset, r.points) for r in out.late]
[(1, 1)]
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from perfloop.schemas.config import WindowsConfig
from perfloop.schemas.messages import WindowAggregate
from perfloop.streams.cell_codec import decode_cells, encode_cells
from perfloop.streams.decoded import DecodedBatch, SeriesKey
from perfloop.streams.reservoir import seed_prefix
from perfloop.streams.sketch import QuantileSketch
from perfloop.streams.window_build import Dropped, window_aggregates
from perfloop.streams.window_cell import WindowCell
from perfloop.streams.window_fold import Finished, OpenCells, add_to_cells, finish_groups

STATE_VERSION = 1
_MAGIC = b"PWB1"  # starts the binary form of to_bytes
_HEAD = struct.Struct("<I")
Emit = Callable[[WindowAggregate], None]
PENDING_POINTS = 1 << 16  # points held unfolded before they are added to their cells


@dataclass(frozen=True, slots=True)
class LateRecord:
    """A record that held points for windows already closed (``points`` of them)."""

    index: int
    partition: int
    offset: int
    points: int


@dataclass(frozen=True, slots=True)
class WindowUpdate:
    """What one :meth:`PartitionWindows.update` produced."""

    closed: list[WindowAggregate]
    late: list[LateRecord]
    late_points: int


class PartitionWindows:
    """The open windows and the watermark of one partition (see the module docstring)."""

    def __init__(self, config: WindowsConfig | None = None) -> None:
        self.config = config or WindowsConfig()
        self.max_ts: float | None = None
        self._watermark = -math.inf
        self.last_wall: float | None = None
        self.points = 0
        self.late_points = 0
        self.dropped = Dropped()
        self._series: list[SeriesKey] = []
        self._series_ids: dict[SeriesKey, int] = {}
        self._seed_prefixes: list[str] = []  # per series, what its cells' seeds start from
        self._windows: OpenCells = {}
        # points not yet added to cells, per window: (series id, ts, value) chunks in arrival order
        self._pending: dict[int, list[tuple[npt.NDArray[Any], ...]]] = {}
        self._pending_points = 0
        self._proto = QuantileSketch(self.config.sketch_alpha)

    @property
    def watermark(self) -> float | None:
        """The current watermark (None before any point)."""
        return None if self._watermark == -math.inf else self._watermark

    @property
    def open_cells(self) -> int:
        """How many (series, window) aggregates are open."""
        self._fold_pending()
        return sum(len(cells) for cells in self._windows.values())

    # -- updates -------------------------------------------------------------------------------

    def update(
        self, batch: DecodedBatch, wall: float | None = None, emit: Emit | None = None
    ) -> WindowUpdate:
        """Add a decoded batch; return the windows it closed and its late records.

        ``wall`` (the wall clock when the batch arrived) only feeds :meth:`advance_idle`.
        With ``emit``, each closed window goes to it as soon as it is built (one service at a
        time, the cells it came from already let go) instead of into the returned list: all
        of a window's aggregates never have to be in memory at once.
        """
        n = batch.points
        if n == 0:
            return WindowUpdate([], [], 0)
        if wall is not None:
            self.last_wall = wall
        length, lateness = self.config.length_s, self.config.lateness_s
        ids = np.fromiter(map(self._intern, batch.series), np.int64, len(batch.series))
        gid = ids[batch.series_idx]
        ts, values = batch.ts, batch.values
        w = np.floor(ts / length).astype(np.int64)

        # the watermark each point sees: from the points before it, in arrival order
        seen = -math.inf if self.max_ts is None else self.max_ts
        before = np.empty(n)
        before[0] = seen
        np.maximum(np.maximum.accumulate(ts[:-1]), seen, out=before[1:])
        mark = np.maximum(before - lateness, self._watermark)
        late = w < np.floor(mark / length)
        late_records: list[LateRecord] = []
        n_late = int(np.count_nonzero(late))
        if n_late:
            idx, counts = np.unique(batch.record_idx[late], return_counts=True)
            for i, c in zip(idx.tolist(), counts.tolist(), strict=True):
                part, off = batch.sources[i]
                late_records.append(LateRecord(i, part, off, c))
            keep = ~late
            gid, w, ts_in, values_in = gid[keep], w[keep], ts[keep], values[keep]
            self.late_points += n_late
        else:
            ts_in, values_in = ts, values
        if ts_in.size:
            self._aggregate(gid, w, ts_in, values_in)
        self.points += n
        self.max_ts = max(seen, float(ts.max()))
        self._watermark = max(self._watermark, self.max_ts - lateness)
        return WindowUpdate(self._close(emit), late_records, n_late)

    def advance_idle(
        self, now_wall: float, idle_timeout: float | None = None, emit: Emit | None = None
    ) -> list[WindowAggregate]:
        """After ``idle_timeout`` s without points, move the watermark to the greatest event
        time plus the idle time, and return the windows that closes (or hand them to
        ``emit``, as in :meth:`update`)."""
        timeout = self.config.idle_timeout_s if idle_timeout is None else idle_timeout
        if self.last_wall is None or self.max_ts is None:
            return []
        idle = now_wall - self.last_wall
        if idle < timeout:
            return []
        self._watermark = max(self._watermark, self.max_ts + idle)
        return self._close(emit)

    def _intern(self, key: SeriesKey) -> int:
        sid = self._series_ids.get(key)
        if sid is None:
            sid = self._series_ids[key] = len(self._series)
            self._series.append(key)
            self._seed_prefixes.append(seed_prefix(*key))
        return sid

    def _aggregate(
        self,
        gid: npt.NDArray[np.int64],
        w: npt.NDArray[np.int64],
        ts: npt.NDArray[np.float64],
        values: npt.NDArray[np.float64],
    ) -> None:
        """Hold the points, by window, until their window closes or ``PENDING_POINTS`` are
        held: a cell then gets all its points in one group, not a few at a time (a point's
        cell and its place in the cell's arrival order are the same either way)."""
        pending = self._pending
        w_min, w_max = int(w.min()), int(w.max())
        if w_min == w_max:
            pending.setdefault(w_min, []).append((gid, ts, values))
        else:
            for wi in np.unique(w).tolist():
                at = w == wi
                pending.setdefault(wi, []).append((gid[at], ts[at], values[at]))
        self._pending_points += gid.size
        if self._pending_points > PENDING_POINTS:
            self._fold_pending()

    def _fold_pending(self, windows: list[int] | None = None, closing: bool = False) -> Finished:
        """Add the held points of ``windows`` (default: all) to their cells. With ``closing``
        (the windows close right after), the series whose points are all held and fit the
        sample get no cell: their aggregates are computed together and returned instead."""
        pending = self._pending
        chosen = [wi for wi in (pending if windows is None else windows) if wi in pending]
        if not chosen:
            return {}
        parts = [(wi, chunk) for wi in chosen for chunk in pending.pop(wi)]
        gid = np.concatenate([c[0] for _, c in parts])
        ts = np.concatenate([c[1] for _, c in parts])
        values = np.concatenate([c[2] for _, c in parts])
        w = np.repeat(np.array([wi for wi, _ in parts], np.int64), [c[0].size for _, c in parts])
        self._pending_points -= gid.size
        finished: Finished = {}
        if closing:
            finished, rest = finish_groups((gid, w, ts, values), self._windows, self.config)
            if rest is None:
                return finished
            gid, w, ts, values = rest
        add_to_cells(
            (gid, w, ts, values),
            self._windows,
            self._seed_prefixes,
            self._proto,
            self.config,
            closing,
        )
        return finished

    # -- closing -------------------------------------------------------------------------------

    def _close(self, emit: Emit | None = None) -> list[WindowAggregate]:
        if not (self._windows or self._pending) or self._watermark == -math.inf:
            return []
        closed_before = math.floor(self._watermark / self.config.length_s)
        done = sorted(wi for wi in {*self._windows, *self._pending} if wi < closed_before)
        out: list[WindowAggregate] = []
        push = out.append if emit is None else emit
        finished = self._fold_pending(done, closing=True)
        length, alpha = self.config.length_s, self.config.sketch_alpha
        for wi in done:
            cells, held = self._windows.pop(wi, {}), finished.get(wi, {})
            start, end = wi * length, (wi + 1) * length
            for window in window_aggregates(
                start, end, self._series, cells, held, alpha, self.dropped
            ):
                push(window)
        if done and len(self._series) > 1024 + 2 * self._open_cells_at_most():
            self._compact()
        return out

    def _open_cells_at_most(self) -> int:
        """The open cells plus the (series, window) pairs of the held points, without adding
        those to cells (a pair in both counts twice)."""
        count = sum(len(cells) for cells in self._windows.values())
        if len(self._series) <= 1024 + 2 * count:
            return count  # small enough whatever is held
        for chunks in self._pending.values():
            count += np.unique(np.concatenate([chunk[0] for chunk in chunks])).size
        return count

    def _compact(self) -> None:
        self._fold_pending()
        used = sorted({sid for cells in self._windows.values() for sid in cells})
        remap = {old: new for new, old in enumerate(used)}
        self._series = [self._series[old] for old in used]
        self._series_ids = {key: i for i, key in enumerate(self._series)}
        self._seed_prefixes = [self._seed_prefixes[old] for old in used]
        self._windows = {
            wi: {remap[sid]: cell for sid, cell in cells.items()}
            for wi, cells in self._windows.items()
        }

    # -- state ---------------------------------------------------------------------------------

    def _header(self) -> tuple[dict[str, Any], list[int], dict[int, int]]:
        self._fold_pending()
        used = sorted({sid for cells in self._windows.values() for sid in cells})
        remap = {old: new for new, old in enumerate(used)}
        head = {
            "version": STATE_VERSION,
            "config": self.config.model_dump(),
            "max_ts": self.max_ts,
            "watermark": self.watermark,
            "last_wall": self.last_wall,
            "counters": [self.points, self.late_points, self.dropped.windows, self.dropped.series],
            "series": [
                [k.service, k.metric, [list(p) for p in k.labels]]
                for k in (self._series[old] for old in used)
            ],
        }
        return head, used, remap

    def _cells(self, remap: dict[int, int]) -> list[tuple[int, int, WindowCell]]:
        return [
            (wi, remap[sid], cell)
            for wi in sorted(self._windows)
            for sid, cell in sorted(self._windows[wi].items())
        ]

    @classmethod
    def _from_header(cls, data: dict[str, Any]) -> PartitionWindows:
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"version: window state version {data.get('version')!r} is not 1")
        pw = cls(WindowsConfig.model_validate(data["config"]))
        pw.max_ts = data["max_ts"]
        pw._watermark = -math.inf if data["watermark"] is None else float(data["watermark"])
        pw.last_wall = data["last_wall"]
        pw.points, pw.late_points, windows, series = data["counters"]
        pw.dropped = Dropped(windows, series)
        for service, metric, labels in data["series"]:
            pw._intern(SeriesKey(service, metric, tuple((k, v) for k, v in labels)))
        return pw

    def to_json(self) -> dict[str, Any]:
        """The whole state as JSON-able data, to compare and inspect states by (the state
        travels as :meth:`to_bytes`)."""
        head, _, remap = self._header()
        head["cells"] = [[wi, sid, cell.to_json()] for wi, sid, cell in self._cells(remap)]
        return head

    def to_bytes(self) -> bytes:
        """The whole state, compactly: a JSON header (configuration, watermark, series) and
        the cells in binary columns (:mod:`perfloop.streams.cell_codec`); :meth:`from_bytes`
        continues identically."""
        head, _, remap = self._header()
        blob = json.dumps(head, separators=(",", ":")).encode()
        return _MAGIC + _HEAD.pack(len(blob)) + blob + encode_cells(self._cells(remap))

    @classmethod
    def from_bytes(cls, data: bytes) -> PartitionWindows:
        """The windows that :meth:`to_bytes` wrote; other bytes raise ValueError naming how
        they start."""
        if not data.startswith(_MAGIC):
            raise ValueError(f"window state: {data[:4]!r} is not the mark {_MAGIC!r}")
        at = len(_MAGIC)
        (size,) = _HEAD.unpack_from(data, at)
        at += _HEAD.size
        pw = cls._from_header(json.loads(data[at : at + size]))
        for wi, sid, cell in decode_cells(data[at + size :], pw.config.sketch_alpha):
            pw._windows.setdefault(wi, {})[sid] = cell
        return pw
