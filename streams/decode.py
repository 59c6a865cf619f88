"""The hot-path decoder of the ``metrics`` topic: raw records in, numpy columns out.

Every record value is JSON, either a point ``{"service", "metric", "value", "ts", "labels"?,
"schema_version"?}`` or a columnar batch ``{"service", "metric", "labels"?, "ts": [...],
"values": [...], "schema_version"?}``, parsed by :mod:`perfloop.streams.record_json` and
checked against :mod:`perfloop.streams.point_rules` with an explicit ``now``. A message with any
bad point is rejected whole; the reason names the field and the value. Batch columns are
checked with numpy, never one pydantic object per point, and a batch of records that are all
plain points is checked column by column.

>>> dec = MetricDecoder()
>>> recs = [
...     RawRecord(b'{"service":"api","metric":"latency_ms","value":12.5,"ts":1700000000}',
...               None, 0, 7),
...     RawRecord(b'{"service":"api","metric":"latency_ms","ts":[1700000001,1700000002],'
...               b'"values":[1,2]}', None, 0, 8),
...     RawRecord(b'{"service":"api","metric":"memory_bytes","value":-1,"ts":1700000000}',
...               None, 0, 9),
... ]
>>> out = dec.decode(recs, now=1_700_000_100.0)
>>> out.values.tolist(), out.series_idx.tolist(), out.series
([12.5, 1.0, 2.0], [0, 0, 0], [SeriesKey(service='api', metric='latency_ms', labels=())])
>>> out.rejections[0].offset, out.rejections[0].reason
(9, "value: -1 is negative, but metric 'memory_bytes' cannot be negative")
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from perfloop.schemas.config import IngestConfig
from perfloop.schemas.vocabulary import non_negative_metrics
from perfloop.streams.decoded import (
    DecodedBatch,
    RawRecord,
    RecordLike,
    Rejection,
    SeriesKey,
    Sources,
)
from perfloop.streams.point_rules import NAME_CACHE_LIMIT, NUMBER_TYPES, BadField, PointRules
from perfloop.streams.record_json import load_values

__all__ = [
    "DecodedBatch",
    "MetricDecoder",
    "RawRecord",
    "RecordLike",
    "Rejection",
    "SeriesKey",
]

_SERIES_OF = operator.itemgetter("service", "metric")


class MetricDecoder:
    """Decodes ``metrics`` records into columns, rejecting bad ones with a reason.

    The decoder only memoizes which names it has already validated (and reuses the key objects
    of unlabeled series); its output depends on the records, the configuration and ``now``
    alone.
    """

    def __init__(self, config: IngestConfig | None = None) -> None:
        self.config = config or IngestConfig()
        self.rules = PointRules(self.config)
        self._plain_keys: dict[tuple[str, str], SeriesKey] = {}  # unlabeled series, for reuse

    def decode(
        self, records: Sequence[RecordLike], now: float, partition: int | None = None
    ) -> DecodedBatch:
        """Decode ``records``; ``now`` (epoch seconds) bounds how far in the future ts may be.
        ``partition`` is the partition of all the records, for records that do not say it
        themselves (aiokafka's bare records); None reads each record's own."""
        max_ts = now + self.config.max_future_s
        series: list[SeriesKey] = []
        series_ids: dict[SeriesKey, int] = {}
        chunks: list[tuple[Any, ...]] = []  # (sidx, ts, values, ridx) arrays, in record order
        p_sidx: list[int] = []
        p_ts: list[float] = []
        p_val: list[float] = []
        p_ridx: list[int] = []
        sources = Sources(records, partition)
        rejections: list[Rejection] = []

        def flush_points() -> None:
            if p_ts:
                chunks.append((p_sidx[:], p_ts[:], p_val[:], p_ridx[:]))
                for column in (p_sidx, p_ts, p_val, p_ridx):
                    column.clear()

        objs = load_values([record.value for record in records])
        plain = self._plain_points(objs, max_ts, sources)
        if plain is not None:
            return plain
        for index, obj in enumerate(objs):
            if type(obj) is BadField:
                part, off = sources[index]
                rejections.append(Rejection(index, part, off, obj.field, obj.reason, 1))
                continue
            points = 1
            try:
                if "values" in obj:
                    vals = obj["values"]
                    if type(vals) is list:
                        points = len(vals)
                    key, ts, values = self.rules.batch(obj, max_ts)
                else:
                    key, t, v = self.rules.point(obj, max_ts)
            except BadField as bad:
                part, off = sources[index]
                rejections.append(Rejection(index, part, off, bad.field, bad.reason, points))
                continue
            sid = series_ids.get(key)
            if sid is None:
                sid = series_ids[key] = len(series)
                series.append(key)
            if "values" in obj:
                flush_points()
                n = ts.size
                chunks.append((np.full(n, sid, np.int32), ts, values, np.full(n, index, np.int32)))
            else:
                p_sidx.append(sid)
                p_ts.append(t)
                p_val.append(v)
                p_ridx.append(index)
        flush_points()
        return DecodedBatch(
            series=series,
            series_idx=_concat([c[0] for c in chunks], np.int32),
            ts=_concat([c[1] for c in chunks], np.float64),
            values=_concat([c[2] for c in chunks], np.float64),
            record_idx=_concat([c[3] for c in chunks], np.int32),
            sources=sources,
            rejections=rejections,
        )

    # -- one message -------------------------------------------------------------------------

    def _plain_points(
        self, objs: list[Any], max_ts: float, sources: Sources
    ) -> DecodedBatch | None:
        """The batch when every record is a good point of exactly ``service``, ``metric``,
        ``value`` and ``ts``, checked column by column (each distinct new name once); None
        when any is not (then the record-by-record path decides, and names the problems)."""
        n = len(objs)
        if n < 2:
            return None
        try:
            pairs: list[tuple[str, str]] = list(map(_SERIES_OF, objs))  # (service, metric) each
            value_list = [obj["value"] for obj in objs]
            ts_list = [obj["ts"] for obj in objs]
            distinct = dict.fromkeys(pairs)  # in order of first appearance
        except (KeyError, TypeError):  # a missing field, a rejection (BadField), a list as a name
            return None
        if (
            set(map(len, objs)) != {4}
            or not set(map(type, value_list)) <= NUMBER_TYPES
            or not set(map(type, ts_list)) <= NUMBER_TYPES
            or {type(name) for pair in distinct for name in pair} != {str}
        ):
            return None
        rules = self.rules
        good = rules.good_names
        try:
            limit = self.config.max_name_length
            for field, names in (("service", {s for s, _ in distinct}),
                                 ("metric", {m for _, m in distinct})):  # fmt: skip
                for name in names - good:
                    rules.name(field, name, limit)
        except BadField:
            return None
        try:
            values = np.asarray(value_list, dtype=np.float64)
            ts = np.asarray(ts_list, dtype=np.float64)
        except OverflowError:
            return None
        if not (self.config.min_ts <= float(ts.min()) and float(ts.max()) <= max_ts):
            return None  # also when a ts is nan
        if not bool(np.isfinite(values).all()):
            return None
        negative = np.flatnonzero(values < 0.0)
        if negative.size and not non_negative_metrics().isdisjoint(
            [pairs[i][1] for i in negative.tolist()]
        ):
            return None
        ids = {pair: i for i, pair in enumerate(distinct)}
        known = self._plain_keys
        if len(known) + len(ids) > NAME_CACHE_LIMIT:
            known.clear()
        return DecodedBatch(
            series=[
                known.get(pair) or known.setdefault(pair, SeriesKey(*pair, ())) for pair in ids
            ],
            series_idx=np.fromiter(map(ids.__getitem__, pairs), np.int32, n),
            ts=ts,
            values=values,
            record_idx=np.arange(n, dtype=np.int32),
            sources=sources,
            rejections=[],
        )


def _concat(parts: list[Any], dtype: type[Any]) -> Any:
    if not parts:
        return np.zeros(0, dtype=dtype)
    if len(parts) == 1:
        return np.asarray(parts[0], dtype=dtype)
    return np.concatenate([np.asarray(p, dtype=dtype) for p in parts])
