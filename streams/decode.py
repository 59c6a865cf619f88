"""The hot-path decoder of the ``metrics`` topic: raw records in, numpy columns out.

Every record value is JSON, either a point ``{"service", "metric", "value", "ts", "labels"?,
"schema_version"?}`` or a columnar batch ``{"service", "metric", "labels"?, "ts": [...],
"values": [...], "schema_version"?}``. The rules are those of
:class:`perfloop.schemas.messages.MetricPoint` and :class:`perfloop.schemas.messages.MetricBatch`,
with the limits of :class:`perfloop.schemas.config.IngestConfig` and an explicit ``now``. A message
with any bad point is rejected whole; the reason names the field and the value. Batch columns are
checked with numpy, never one pydantic object per point.

The decoder is a little stricter than pydantic's lax mode: numbers must be JSON numbers (not
strings or booleans) and ``schema_version`` must be the integer 1.

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

import itertools
import json
import math
import operator
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic_core import from_json

from perfloop.schemas.config import IngestConfig
from perfloop.schemas.vocabulary import NON_NEGATIVE_METRICS
from perfloop.streams.decoded import (
    DecodedBatch,
    Labels,
    RawRecord,
    RecordLike,
    Rejection,
    SeriesKey,
    Sources,
)

__all__ = [
    "DecodedBatch",
    "MetricDecoder",
    "RawRecord",
    "RecordLike",
    "Rejection",
    "SeriesKey",
]

_NAME = re.compile(r"[A-Za-z0-9_.:/@-]+")
_POINT_FIELDS = frozenset({"service", "metric", "value", "ts", "labels", "schema_version"})
_BATCH_FIELDS = frozenset({"service", "metric", "ts", "values", "labels", "schema_version"})
_POINT_REQUIRED = frozenset({"service", "metric", "value", "ts"})
_BATCH_REQUIRED = frozenset({"service", "metric", "ts", "values"})
_NUMBER_TYPES = frozenset({float, int})
_SERIES_OF = operator.itemgetter("service", "metric")
_NAME_CACHE_LIMIT = 65_536
_JSON = json.JSONDecoder()


class _Bad(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _show(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


class MetricDecoder:
    """Decodes ``metrics`` records into columns, rejecting bad ones with a reason.

    The decoder only memoizes which names it has already validated (and reuses the key objects
    of unlabeled series); its output depends on the records, the configuration and ``now``
    alone.
    """

    def __init__(self, config: IngestConfig | None = None) -> None:
        self.config = config or IngestConfig()
        self._good_names: set[str] = set()
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

        objs = self._load_all([record.value for record in records])
        plain = self._plain_points(objs, max_ts, sources)
        if plain is not None:
            return plain
        for index, obj in enumerate(objs):
            if type(obj) is _Bad:
                part, off = sources[index]
                rejections.append(Rejection(index, part, off, obj.field, obj.reason, 1))
                continue
            points = 1
            try:
                if "values" in obj:
                    vals = obj["values"]
                    if type(vals) is list:
                        points = len(vals)
                    key, ts, values = self._batch(obj, max_ts)
                else:
                    key, t, v = self._point(obj, max_ts)
            except _Bad as bad:
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
        except (KeyError, TypeError):  # a missing field, a rejection (_Bad), a list as a name
            return None
        if (
            set(map(len, objs)) != {4}
            or not set(map(type, value_list)) <= _NUMBER_TYPES
            or not set(map(type, ts_list)) <= _NUMBER_TYPES
            or {type(name) for pair in distinct for name in pair} != {str}
        ):
            return None
        good = self._good_names
        try:
            limit = self.config.max_name_length
            for field, names in (("service", {s for s, _ in distinct}),
                                 ("metric", {m for _, m in distinct})):  # fmt: skip
                for name in names - good:
                    self._name(field, name, limit)
        except _Bad:
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
        if negative.size and not NON_NEGATIVE_METRICS.isdisjoint(
            [pairs[i][1] for i in negative.tolist()]
        ):
            return None
        ids = {pair: i for i, pair in enumerate(distinct)}
        known = self._plain_keys
        if len(known) + len(ids) > _NAME_CACHE_LIMIT:
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

    def _load_all(self, raws: list[bytes | None]) -> list[Any]:
        """Per record value, what :meth:`_load` returns, or the :class:`_Bad` it raises.

        Values are parsed with pydantic-core's JSON parser (several times faster than the
        standard library's on number arrays). It accepts no text that the standard library
        rejects and parses what both accept to equal values; where it fails (bad input, but
        also lone surrogate escapes or deep nesting, which the standard library takes),
        :meth:`_load` parses the value again and names the problem, so the outcome is the
        standard library's either way.

        Values that are all ``{``-led objects without a ``[`` byte are parsed in one go as
        ``[v1,\nv2,...]``. That parse equals the parses of the values one by one whenever it
        succeeds with one item a value: a raw newline cannot be inside a JSON string, so no
        string spans a joint; a joint's comma is then structural and, as ``{`` follows it,
        not inside an object; without ``[`` there is no other array than the outer one, so
        every joint separates two items, and with exactly one item a value each value is a
        whole JSON text by itself. Anything else falls back to one parse a value.
        """
        if len(raws) > 1:
            try:
                opened = all(map(bytes.startswith, raws, itertools.repeat(b"{")))  # type: ignore[arg-type]  # TypeError on None
                body = b",\n".join([b"[" + raws[0], *raws[1:-1], raws[-1] + b"]"])  # type: ignore[operator, list-item]
                if opened and body.count(b"[") == 1:
                    objs = from_json(body)
                    if len(objs) == len(raws):
                        return objs
            except Exception:  # noqa: BLE001 - any failure: parse one by one below
                pass
        out: list[Any] = []
        for raw in raws:
            try:
                obj = from_json(raw)  # type: ignore[arg-type]  # TypeError on None
                if type(obj) is dict:
                    out.append(obj)
                    continue
            except Exception:  # noqa: BLE001 - _load names the problem
                pass
            try:
                out.append(self._load(raw))
            except _Bad as bad:
                out.append(bad)
        return out

    def _load(self, raw: bytes | None) -> dict[str, Any]:
        if raw is None:
            raise _Bad("json", "json: empty record (no value)")
        try:
            obj = _JSON.decode(raw.decode())
        except UnicodeDecodeError as exc:
            raise _Bad("json", f"json: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except json.JSONDecodeError as exc:
            raise _Bad("json", f"json: malformed ({exc.msg} at char {exc.pos})") from None
        except RecursionError:
            raise _Bad("json", "json: nested too deeply") from None
        if type(obj) is not dict:
            raise _Bad("json", f"json: expected an object, got {_kind(obj)}")
        return obj

    def _common(
        self, obj: dict[str, Any], allowed: frozenset[str], required: frozenset[str], what: str
    ) -> SeriesKey:
        keys = obj.keys()
        if not keys <= allowed:
            name = sorted(keys - allowed)[0]
            raise _Bad(name, f"{name[:60]}: unknown field for a {what}")
        if not keys >= required:
            name = sorted(required - keys)[0]
            raise _Bad(name, f"{name}: missing")
        if "schema_version" in obj:
            version = obj["schema_version"]
            if type(version) is not int or version != 1:
                raise _Bad("schema_version", f"schema_version: {_show(version)} is not 1")
        service = self._name("service", obj["service"], self.config.max_name_length)
        metric = self._name("metric", obj["metric"], self.config.max_name_length)
        labels = self._labels(obj["labels"]) if "labels" in obj else ()
        return SeriesKey(service, metric, labels)

    def _point(self, obj: dict[str, Any], max_ts: float) -> tuple[SeriesKey, float, float]:
        key = self._common(obj, _POINT_FIELDS, _POINT_REQUIRED, "point")
        value = _number("value", obj["value"])
        if value < 0 and key.metric in NON_NEGATIVE_METRICS:
            raise _Bad("value", _negative("value", obj["value"], key.metric))
        ts = _number("ts", obj["ts"])
        self._check_ts_scalar("ts", ts, max_ts)
        return key, ts, value

    def _batch(
        self, obj: dict[str, Any], max_ts: float
    ) -> tuple[SeriesKey, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        key = self._common(obj, _BATCH_FIELDS, _BATCH_REQUIRED, "batch")
        ts_list, val_list = obj["ts"], obj["values"]
        for name, col in (("ts", ts_list), ("values", val_list)):
            if type(col) is not list:
                raise _Bad(name, f"{name}: expected a list, got {_kind(col)}")
        n = len(val_list)
        if len(ts_list) != n:
            raise _Bad("ts", f"ts: length {len(ts_list)} differs from values length {n}")
        if n == 0:
            raise _Bad("values", "values: empty (a batch holds at least 1 point)")
        if n > self.config.max_batch_points:
            raise _Bad("values", f"values: {n} points exceed {self.config.max_batch_points}")
        ts = _column("ts", ts_list)
        values = _column("values", val_list)
        bad = ~np.isfinite(ts)
        if bad.any():
            i = int(bad.argmax())
            raise _Bad("ts", f"ts[{i}]: {float(ts[i])!r} is not a finite number")
        lo, hi = float(ts.min()), float(ts.max())
        if lo < self.config.min_ts or hi > max_ts:
            i = int((ts < self.config.min_ts).argmax() if lo < self.config.min_ts else ts.argmax())
            self._check_ts_scalar(f"ts[{i}]", float(ts[i]), max_ts, field="ts")
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(bad.argmax())
            raise _Bad("values", f"values[{i}]: {float(values[i])!r} is not a finite number")
        if key.metric in NON_NEGATIVE_METRICS and float(values.min()) < 0:
            i = int(values.argmin())
            raise _Bad("values", _negative(f"values[{i}]", val_list[i], key.metric))
        return key, ts, values

    def _check_ts_scalar(self, label: str, ts: float, max_ts: float, field: str = "ts") -> None:
        if ts < self.config.min_ts:
            raise _Bad(
                field,
                f"{label}: {ts!r} is before 2000-01-01 ({self.config.min_ts!r}); "
                "seconds since the epoch expected",
            )
        if ts > max_ts:
            raise _Bad(
                field,
                f"{label}: {ts!r} is more than {self.config.max_future_s:g} s in the future "
                f"(latest accepted {max_ts!r})",
            )

    def _name(self, field: str, value: Any, limit: int) -> str:
        if type(value) is str and value in self._good_names:
            return value
        if type(value) is not str:
            raise _Bad(field, f"{field}: expected a string, got {_kind(value)} {_show(value)}")
        if not value:
            raise _Bad(field, f"{field}: empty string")
        if len(value) > limit:
            raise _Bad(field, f"{field}: string of {len(value)} characters exceeds {limit}")
        if _NAME.fullmatch(value) is None:
            raise _Bad(field, f"{field}: {_show(value)} has characters outside [A-Za-z0-9_.:/@-]")
        if len(self._good_names) >= _NAME_CACHE_LIMIT:
            self._good_names.clear()
        self._good_names.add(value)
        return value

    def _labels(self, labels: Any) -> Labels:
        if type(labels) is not dict:
            raise _Bad("labels", f"labels: expected an object, got {_kind(labels)}")
        if not labels:
            return ()
        limit = self.config.max_label_length
        if len(labels) > self.config.max_labels:
            raise _Bad("labels", f"labels: {len(labels)} labels exceed {self.config.max_labels}")
        for name, value in labels.items():
            self._name("labels", name, limit)
            if type(value) is not str:
                raise _Bad(
                    "labels",
                    f"labels[{_show(name)}]: expected a string, got {_kind(value)} {_show(value)}",
                )
            if len(value) > limit:
                raise _Bad(
                    "labels",
                    f"labels[{_show(name)}]: string of {len(value)} characters exceeds {limit}",
                )
        return tuple(sorted(labels.items()))


def _number(field: str, value: Any, label: str | None = None) -> float:
    label = label or field
    if type(value) is not float and type(value) is not int:
        raise _Bad(field, f"{label}: expected a number, got {_kind(value)} {_show(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise _Bad(field, f"{label}: {_show(value)} is not a finite number") from None
    if not math.isfinite(number):
        raise _Bad(field, f"{label}: {number!r} is not a finite number")
    return number


def _column(field: str, items: list[Any]) -> npt.NDArray[np.float64]:
    try:
        if set(map(type, items)) <= _NUMBER_TYPES:
            return np.asarray(items, dtype=np.float64)
    except OverflowError:
        pass
    for i, item in enumerate(items):  # find and name the culprit
        _number(field, item, f"{field}[{i}]")
    raise AssertionError("unreachable: a column that failed to convert has a bad item")


def _negative(label: str, value: Any, metric: str) -> str:
    return f"{label}: {_show(value)} is negative, but metric {metric!r} cannot be negative"


def _concat(parts: list[Any], dtype: type[Any]) -> Any:
    if not parts:
        return np.zeros(0, dtype=dtype)
    if len(parts) == 1:
        return np.asarray(parts[0], dtype=dtype)
    return np.concatenate([np.asarray(p, dtype=dtype) for p in parts])
