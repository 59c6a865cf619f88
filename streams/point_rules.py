"""The rules a metric message meets: its fields, names, labels, numbers and time bounds.

They are those of :class:`perfloop.schemas.messages.MetricPoint` and
:class:`perfloop.schemas.messages.MetricBatch`, with the limits of
:class:`perfloop.schemas.config.IngestConfig` and an explicit latest ``ts``, a little stricter
than pydantic's lax mode: numbers must be JSON numbers (not strings or booleans) and
``schema_version`` must be the integer 1. A broken rule raises :class:`BadField`, whose reason
names the field and the value.

>>> rules = PointRules(IngestConfig())
>>> rules.point({"service": "api", "metric": "latency_ms", "value": 2, "ts": 1.7e9}, 1.8e9)
(SeriesKey(service='api', metric='latency_ms', labels=()), 1700000000.0, 2.0)
>>> rules.name("service", "a b", 128)
Traceback (most recent call last):
...
perfloop.streams.point_rules.BadField: service: 'a b' has characters outside [A-Za-z0-9_.:/@-]
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import numpy.typing as npt

from perfloop.schemas.config import IngestConfig
from perfloop.schemas.vocabulary import non_negative_metrics
from perfloop.streams.decoded import Labels, SeriesKey

_NAME = re.compile(r"[A-Za-z0-9_.:/@-]+")
POINT_FIELDS = frozenset({"service", "metric", "value", "ts", "labels", "schema_version"})
BATCH_FIELDS = frozenset({"service", "metric", "ts", "values", "labels", "schema_version"})
POINT_REQUIRED = frozenset({"service", "metric", "value", "ts"})
BATCH_REQUIRED = frozenset({"service", "metric", "ts", "values"})
NUMBER_TYPES = frozenset({float, int})
NAME_CACHE_LIMIT = 65_536


class BadField(Exception):
    """A message that breaks a rule: the field it names and why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def show(value: Any) -> str:
    """``value`` as a reason quotes it: its repr, cut at 60 characters."""
    if isinstance(value, float):
        return repr(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def kind(value: Any) -> str:
    """The JSON-ish name of ``value``'s type, for reasons."""
    return "null" if value is None else type(value).__name__


class PointRules:
    """The rules of :mod:`perfloop.streams.point_rules` under ``config``'s limits; it
    memoizes the names it has found good (at most ``NAME_CACHE_LIMIT``)."""

    def __init__(self, config: IngestConfig) -> None:
        self.config = config
        self.good_names: set[str] = set()

    def series(
        self, obj: dict[str, Any], allowed: frozenset[str], required: frozenset[str], what: str
    ) -> SeriesKey:
        """The series of a point or batch (``what``) whose fields are ``obj``'s."""
        keys = obj.keys()
        if not keys <= allowed:
            name = sorted(keys - allowed)[0]
            raise BadField(name, f"{name[:60]}: unknown field for a {what}")
        if not keys >= required:
            name = sorted(required - keys)[0]
            raise BadField(name, f"{name}: missing")
        if "schema_version" in obj:
            version = obj["schema_version"]
            if type(version) is not int or version != 1:
                raise BadField("schema_version", f"schema_version: {show(version)} is not 1")
        service = self.name("service", obj["service"], self.config.max_name_length)
        metric = self.name("metric", obj["metric"], self.config.max_name_length)
        labels = self.labels(obj["labels"]) if "labels" in obj else ()
        return SeriesKey(service, metric, labels)

    def point(self, obj: dict[str, Any], max_ts: float) -> tuple[SeriesKey, float, float]:
        """A point's series, ts and value; ``max_ts`` is the latest ts accepted."""
        key = self.series(obj, POINT_FIELDS, POINT_REQUIRED, "point")
        value = number("value", obj["value"])
        if value < 0 and key.metric in non_negative_metrics():
            raise BadField("value", negative("value", obj["value"], key.metric))
        ts = number("ts", obj["ts"])
        self.check_ts("ts", ts, max_ts)
        return key, ts, value

    def batch(
        self, obj: dict[str, Any], max_ts: float
    ) -> tuple[SeriesKey, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """A batch's series and its ts and values columns, checked in numpy."""
        key = self.series(obj, BATCH_FIELDS, BATCH_REQUIRED, "batch")
        ts_list, val_list = obj["ts"], obj["values"]
        for name, col in (("ts", ts_list), ("values", val_list)):
            if type(col) is not list:
                raise BadField(name, f"{name}: expected a list, got {kind(col)}")
        n = len(val_list)
        if len(ts_list) != n:
            raise BadField("ts", f"ts: length {len(ts_list)} differs from values length {n}")
        if n == 0:
            raise BadField("values", "values: empty (a batch holds at least 1 point)")
        if n > self.config.max_batch_points:
            raise BadField("values", f"values: {n} points exceed {self.config.max_batch_points}")
        ts = column("ts", ts_list)
        values = column("values", val_list)
        bad = ~np.isfinite(ts)
        if bad.any():
            i = int(bad.argmax())
            raise BadField("ts", f"ts[{i}]: {float(ts[i])!r} is not a finite number")
        lo, hi = float(ts.min()), float(ts.max())
        if lo < self.config.min_ts or hi > max_ts:
            i = int((ts < self.config.min_ts).argmax() if lo < self.config.min_ts else ts.argmax())
            self.check_ts(f"ts[{i}]", float(ts[i]), max_ts, field="ts")
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(bad.argmax())
            raise BadField("values", f"values[{i}]: {float(values[i])!r} is not a finite number")
        if key.metric in non_negative_metrics() and float(values.min()) < 0:
            i = int(values.argmin())
            raise BadField("values", negative(f"values[{i}]", val_list[i], key.metric))
        return key, ts, values

    def check_ts(self, label: str, ts: float, max_ts: float, field: str = "ts") -> None:
        if ts < self.config.min_ts:
            raise BadField(
                field,
                f"{label}: {ts!r} is before 2000-01-01 ({self.config.min_ts!r}); "
                "seconds since the epoch expected",
            )
        if ts > max_ts:
            raise BadField(
                field,
                f"{label}: {ts!r} is more than {self.config.max_future_s:g} s in the future "
                f"(latest accepted {max_ts!r})",
            )

    def name(self, field: str, value: Any, limit: int) -> str:
        """``value`` as the name ``field``; each good name is checked once (memoized)."""
        if type(value) is str and value in self.good_names:
            return value
        if type(value) is not str:
            raise BadField(field, f"{field}: expected a string, got {kind(value)} {show(value)}")
        if not value:
            raise BadField(field, f"{field}: empty string")
        if len(value) > limit:
            raise BadField(field, f"{field}: string of {len(value)} characters exceeds {limit}")
        if _NAME.fullmatch(value) is None:
            raise BadField(
                field, f"{field}: {show(value)} has characters outside [A-Za-z0-9_.:/@-]"
            )
        if len(self.good_names) >= NAME_CACHE_LIMIT:
            self.good_names.clear()
        self.good_names.add(value)
        return value

    def labels(self, labels: Any) -> Labels:
        if type(labels) is not dict:
            raise BadField("labels", f"labels: expected an object, got {kind(labels)}")
        if not labels:
            return ()
        limit = self.config.max_label_length
        if len(labels) > self.config.max_labels:
            raise BadField(
                "labels", f"labels: {len(labels)} labels exceed {self.config.max_labels}"
            )
        for name, value in labels.items():
            self.name("labels", name, limit)
            if type(value) is not str:
                raise BadField(
                    "labels",
                    f"labels[{show(name)}]: expected a string, got {kind(value)} {show(value)}",
                )
            if len(value) > limit:
                raise BadField(
                    "labels",
                    f"labels[{show(name)}]: string of {len(value)} characters exceeds {limit}",
                )
        return tuple(sorted(labels.items()))


def number(field: str, value: Any, label: str | None = None) -> float:
    label = label or field
    if type(value) is not float and type(value) is not int:
        raise BadField(field, f"{label}: expected a number, got {kind(value)} {show(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise BadField(field, f"{label}: {show(value)} is not a finite number") from None
    if not math.isfinite(number):
        raise BadField(field, f"{label}: {number!r} is not a finite number")
    return number


def column(field: str, items: list[Any]) -> npt.NDArray[np.float64]:
    try:
        if set(map(type, items)) <= NUMBER_TYPES:
            return np.asarray(items, dtype=np.float64)
    except OverflowError:
        pass
    for i, item in enumerate(items):  # find and name the culprit
        number(field, item, f"{field}[{i}]")
    raise AssertionError("unreachable: a column that failed to convert has a bad item")


def negative(label: str, value: Any, metric: str) -> str:
    return f"{label}: {show(value)} is negative, but metric {metric!r} cannot be negative"
