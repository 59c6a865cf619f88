"""A service's recent windows in a compact binary form: the history detection keeps.

The detect stage keeps each service's last few windows (``windows.history_windows``) for the
diagnose stage, in a table held in memory, so their size counts per series. A window is one
record: a small JSON header (window id, service, start, end, and each series' metric and
labels), then the series' aggregates as little-endian float64, nine a series (:data:`FIELDS`);
the samples are left out. That is about 100 bytes a series, half of the window's JSON.

A history is :data:`MAGIC` and its records, oldest first, each prefixed by its length and its
header's length (two little-endian uint32). :class:`History` appends a window and drops the
oldest by slicing bytes, without decoding anything; :func:`decode` gives the windows back.
Bytes of any other form are an error that says what they start with.

>>> from perfloop.schemas.messages import SeriesAggregate
>>> def window(start):
...     s = SeriesAggregate(metric="latency_ms", count=2, sum=3.0, min=1.0, max=2.0, mean=1.5,
...                         last=2.0, p50=1.0, p95=2.0, p99=2.0, sample=[1.0, 2.0])
...     return WindowAggregate(window_id=f"api:{start}", service="api", start=start,
...                            end=start + 10, series=[s])
>>> h = History.load(None)
>>> for start in (0.0, 10.0, 20.0):
...     h.append(window(start), keep=2)
>>> [(w.start, w.series[0].p95, w.series[0].sample) for w in decode(h.blob)]
[(10.0, 2.0, []), (20.0, 2.0, [])]
>>> History.load(h.blob).latest
20.0
"""

from __future__ import annotations

import json
import operator
import struct
from typing import Any

import numpy as np
from pydantic import TypeAdapter

from perfloop.schemas.messages import WindowAggregate

MAGIC = b"H\x01"
FIELDS = ("count", "sum", "min", "max", "mean", "last", "p50", "p95", "p99")
_ROW = operator.attrgetter(*FIELDS)
_PREFIX = struct.Struct("<II")  # the record's length after the prefix, its header's length
_SERIES_KEYS = ("metric", "labels", *FIELDS)
_WINDOWS = TypeAdapter(list[WindowAggregate])


def encode(window: WindowAggregate) -> bytes:
    """One window as a record (its prefix included)."""
    series = window.series
    head = json.dumps(
        [
            window.window_id,
            window.service,
            window.start,
            window.end,
            [[s.metric, s.labels] if s.labels else s.metric for s in series],
        ],
        separators=(",", ":"),
    ).encode()
    data = np.array(list(map(_ROW, series)), dtype="<f8").tobytes()
    return _PREFIX.pack(len(head) + len(data), len(head)) + head + data


def _records(blob: bytes) -> list[tuple[int, int]]:
    """The (offset, size with prefix) of each record of a binary history."""
    out = []
    at = len(MAGIC)
    while at < len(blob):
        if at + _PREFIX.size > len(blob):
            raise ValueError(f"history: {len(blob) - at} bytes at the end are not a record")
        size, _ = _PREFIX.unpack_from(blob, at)
        out.append((at, _PREFIX.size + size))
        at += _PREFIX.size + size
    if at != len(blob):
        raise ValueError(f"history: a record runs {at - len(blob)} bytes past the end")
    return out


def _head(blob: bytes, at: int) -> tuple[list[Any], int]:
    """The header of the record at ``at`` ([window id, service, start, end, names]) and where
    the record's values begin."""
    _, head_size = _PREFIX.unpack_from(blob, at)
    start = at + _PREFIX.size
    head: list[Any] = json.loads(blob[start : start + head_size])
    return head, start + head_size


def _check_magic(blob: bytes) -> None:
    if not blob.startswith(MAGIC):
        raise ValueError(f"history: bytes starting {blob[:8]!r} are not a history of windows")


def decode(
    blob: bytes | None, memo: dict[bytes, WindowAggregate] | None = None
) -> list[WindowAggregate]:
    """The windows of a history, oldest first (samples empty).

    With ``memo`` (record -> window), a record decoded before is not decoded again, and the
    records decoded now are added to it: the histories of one service's breaches share most
    of their windows. The windows are then shared too; nothing may change them."""
    if not blob:
        return []
    _check_magic(blob)
    memo = {} if memo is None else memo
    records = [blob[at : at + size] for at, size in _records(blob)]
    new = [record for record in dict.fromkeys(records) if record not in memo]
    windows = []
    for record in new:
        (window_id, service, start, end, names), begin = _head(record, 0)
        values = np.frombuffer(record, dtype="<f8", offset=begin).reshape(-1, len(FIELDS))
        series = [
            dict(zip(_SERIES_KEYS, (name, {}, *row) if isinstance(name, str) else (*name, *row),
                     strict=True))
            for name, row in zip(names, values.tolist(), strict=True)
        ]  # fmt: skip
        windows.append(
            {"window_id": window_id, "service": service, "start": start, "end": end,
             "series": series}
        )  # fmt: skip
    # one call for all: the count's float is lax
    memo.update(zip(new, _WINDOWS.validate_python(windows), strict=True))
    return [memo[record] for record in records]


class History:
    """A service's recent windows as one bytes object (the one its table holds)."""

    __slots__ = ("blob", "sizes", "latest")

    def __init__(self, blob: bytes, sizes: list[int], latest: float | None) -> None:
        self.blob = blob
        self.sizes = sizes  # each record's size, its prefix included
        self.latest = latest  # the start of the newest window

    @classmethod
    def load(cls, blob: bytes | None) -> History:
        """The history a table held, or an empty one."""
        if not blob:
            return cls(MAGIC, [], None)
        _check_magic(blob)
        records = _records(blob)
        latest = float(_head(blob, records[-1][0])[0][2]) if records else None
        return cls(blob, [size for _, size in records], latest)

    def append(self, window: WindowAggregate, keep: int) -> None:
        """Add ``window`` as the newest, keeping the last ``keep`` windows."""
        record = encode(window)
        body, sizes = self.blob[len(MAGIC) :], self.sizes
        drop = len(sizes) + 1 - keep
        if drop > 0:
            body, sizes = body[sum(sizes[:drop]) :], sizes[drop:]
        self.blob = MAGIC + body + record
        self.sizes = [*sizes, len(record)]
        self.latest = window.start
