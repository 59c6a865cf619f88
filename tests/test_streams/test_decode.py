"""The hot-path decoder: same verdicts as the pydantic models, reasons that name field and value."""

from __future__ import annotations

import json
import time
from typing import Any, NamedTuple

import numpy as np
import pytest
from pydantic import ValidationError

from perfloop.schemas.config import IngestConfig
from perfloop.schemas.messages import MetricBatch, MetricPoint
from perfloop.streams.decode import MetricDecoder, RawRecord, SeriesKey

NOW = time.time()
T0 = 1_700_000_000.0


def point(**changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"service": "checkout", "metric": "latency_ms", "value": 12.5, "ts": T0}
    obj.update(changes)
    return {k: v for k, v in obj.items() if v is not DROP}


def batch(n: int = 4, **changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "service": "checkout",
        "metric": "memory_bytes",
        "ts": [T0 + i for i in range(n)],
        "values": [1e9 + i for i in range(n)],
    }
    obj.update(changes)
    return {k: v for k, v in obj.items() if v is not DROP}


DROP = object()


def raw(obj: Any) -> bytes:
    return obj if isinstance(obj, bytes) else json.dumps(obj).encode()


def decode_one(obj: Any) -> tuple[bool, str]:
    out = MetricDecoder().decode([RawRecord(raw(obj), None, 3, 42)], now=time.time())
    if out.rejections:
        rej = out.rejections[0]
        assert (rej.partition, rej.offset, rej.index) == (3, 42, 0)
        assert rej.reason.startswith(rej.field)
        return False, rej.reason
    return True, ""


def pydantic_accepts(obj: Any) -> bool:
    data = raw(obj)
    try:
        parsed = json.loads(data)
    except ValueError:
        parsed = None
    model = MetricBatch if isinstance(parsed, dict) and "values" in parsed else MetricPoint
    try:
        model.model_validate_json(data)
    except ValidationError:
        return False
    return True


def assert_both_reject(obj: Any, reason_part: str) -> None:
    accepted, reason = decode_one(obj)
    assert not accepted, obj
    assert reason_part in reason, reason
    assert not pydantic_accepts(obj), obj


@pytest.mark.parametrize(
    "obj",
    [
        point(),
        point(value=0, labels={"region": "eu-1", "pod": ""}, schema_version=1),
        point(metric="custom_delta", value=-3.5),
        point(value=2**70),
        batch(),
        batch(1, labels={"host": "a"}, schema_version=1),
        batch(3, metric="latency_ms", values=[1, 2.5, 3]),
    ],
)
def test_both_accept_good_messages(obj: dict[str, Any]) -> None:
    assert decode_one(obj) == (True, "")
    assert pydantic_accepts(obj)


@pytest.mark.parametrize(
    "obj, part",
    [
        (b'{"service": "checkout", "metric"', "json: malformed"),
        (b"not json at all", "json: malformed"),
        (b"\xff\xfe\x00", "json:"),
        (b"[1, 2]", "json: expected an object, got list"),
        (b"null", "json: expected an object, got null"),
    ],
)
def test_malformed_json(obj: bytes, part: str) -> None:
    assert_both_reject(obj, part)


@pytest.mark.parametrize(
    "obj, part",
    [
        (point(service=5), "service: expected a string, got int 5"),
        (point(value=[1]), "value: expected a number, got list [1]"),
        (point(value=None), "value: expected a number, got null"),
        (point(ts="yesterday"), "ts: expected a number, got str 'yesterday'"),
        (point(labels=["a"]), "labels: expected an object, got list"),
        (point(labels={"a": 1}), "labels['a']: expected a string, got int 1"),
        (batch(values="1,2,3,4"), "values: expected a list, got str"),
        (batch(values=[1, "x", 3, 4]), "values[1]: expected a number, got str 'x'"),
        (batch(values=[1, 2, [3], 4]), "values[2]: expected a number, got list [3]"),
        (batch(ts=[T0, None, T0, T0]), "ts[1]: expected a number, got null"),
        (point(service=DROP), "service: missing"),
    ],
)
def test_wrong_types(obj: dict[str, Any], part: str) -> None:
    assert_both_reject(obj, part)


@pytest.mark.parametrize(
    "obj, part",
    [
        (point(value=float("nan")), "value: nan is not a finite number"),
        (point(value=float("inf")), "value: inf is not a finite number"),
        (point(ts=float("-inf")), "ts: -inf is not a finite number"),
        (b'{"service":"a","metric":"m","value":1e400,"ts":1700000000}', "value: inf is not"),
        (point(value=10**400), "is not a finite number"),
        (
            batch(20, values=[1.0] * 17 + [float("nan")] * 3),
            "values[17]: nan is not a finite number",
        ),
        (batch(ts=[T0, T0, float("inf"), T0]), "ts[2]: inf is not a finite number"),
    ],
)
def test_nan_and_inf(obj: Any, part: str) -> None:
    assert_both_reject(obj, part)


@pytest.mark.parametrize(
    "obj, part",
    [
        (
            point(metric="memory_bytes", value=-1),
            "value: -1 is negative, but metric 'memory_bytes' cannot be negative",
        ),
        (batch(values=[1.0, 2.0, -3.0, 4.0]), "values[2]: -3.0 is negative"),
        (point(metric="cache_hits", value=-0.5), "value: -0.5 is negative"),
    ],
)
def test_negative_memory_and_other_non_negative_metrics(obj: dict[str, Any], part: str) -> None:
    assert_both_reject(obj, part)


@pytest.mark.parametrize(
    "obj, part",
    [
        (
            batch(ts=[T0, T0 + 1, T0 + 2], values=[1, 2, 3, 4]),
            "ts: length 3 differs from values length 4",
        ),
        (batch(ts=[T0] * 5, values=[1, 2]), "ts: length 5 differs from values length 2"),
        (batch(ts=[], values=[]), "values: empty"),
    ],
)
def test_mismatched_or_empty_columns(obj: dict[str, Any], part: str) -> None:
    assert_both_reject(obj, part)


def test_batch_size_limit() -> None:
    obj = batch(100_001)
    assert_both_reject(obj, "values: 100001 points exceed 100000")
    small = MetricDecoder(IngestConfig(max_batch_points=3))
    out = small.decode([RawRecord(raw(batch(4)), None, 0, 0)], now=NOW)
    assert out.rejections[0].reason == "values: 4 points exceed 3"
    assert out.rejections[0].points == 4


@pytest.mark.parametrize(
    "obj, part",
    [
        (point(service="s" * 300), "service: string of 300 characters exceeds 128"),
        (point(metric="m" * 129), "metric: string of 129 characters exceeds 128"),
        (point(service=""), "service: empty string"),
        (point(service="check out"), "service: 'check out' has characters outside"),
        (point(service="checkout\n"), "service: 'checkout\\n' has characters outside"),
        (point(labels={"pod": "p" * 129}), "labels['pod']: string of 129 characters exceeds 128"),
        (point(labels={"k" * 129: "v"}), "labels: string of 129 characters exceeds 128"),
        (point(labels={"bad key": "v"}), "labels: 'bad key' has characters outside"),
        (point(labels={f"k{i}": "v" for i in range(17)}), "labels: 17 labels exceed 16"),
    ],
)
def test_oversize_or_malformed_strings(obj: dict[str, Any], part: str) -> None:
    assert_both_reject(obj, part)


@pytest.mark.parametrize(
    "obj, part",
    [
        (point(ts=NOW + 7200), "ts: "),
        (batch(ts=[T0, T0, NOW + 7200, T0]), "ts[2]: "),
        (point(ts=100.0), "ts: 100.0 is before 2000-01-01"),
        (batch(ts=[T0, 5.0, T0, T0]), "ts[1]: 5.0 is before 2000-01-01"),
    ],
)
def test_far_future_and_ancient_timestamps(obj: dict[str, Any], part: str) -> None:
    assert_both_reject(obj, part)
    if part.startswith("ts"):
        assert "future" in decode_one(obj)[1] or "before" in decode_one(obj)[1]


def test_future_limit_uses_the_given_now() -> None:
    rec = RawRecord(raw(point(ts=T0 + 3000)), None, 0, 0)
    assert MetricDecoder().decode([rec], now=T0).points == 1
    late = MetricDecoder().decode([rec], now=T0 - 1000)
    assert "more than 3600 s in the future" in late.rejections[0].reason


@pytest.mark.parametrize(
    "obj, part",
    [
        (point(unit="ms"), "unit: unknown field for a point"),
        (batch(value=1.0), "value: unknown field for a batch"),
        (point(values_=1), "values_: unknown field"),
        (point(schema_version=2), "schema_version: 2 is not 1"),
    ],
)
def test_unknown_fields_and_versions(obj: dict[str, Any], part: str) -> None:
    assert_both_reject(obj, part)


@pytest.mark.parametrize(
    "obj, part",
    [
        (point(value="1.5"), "value: expected a number, got str '1.5'"),
        (point(value=True), "value: expected a number, got bool True"),
        (batch(values=[1, True, 3, 4]), "values[1]: expected a number, got bool True"),
        (point(schema_version=True), "schema_version: True is not 1"),
    ],
)
def test_stricter_than_pydantic_lax_mode_on_numbers(obj: dict[str, Any], part: str) -> None:
    accepted, reason = decode_one(obj)
    assert not accepted and part in reason


def test_columns_keep_record_order_and_identity() -> None:
    records = [
        RawRecord(raw(point(ts=T0 + 1, value=1.0)), b"checkout", 2, 10),
        RawRecord(raw(batch(2, metric="latency_ms", values=[2.0, 3.0])), b"checkout", 2, 11),
        RawRecord(b"{oops", None, 2, 12),
        RawRecord(
            raw(point(service="search", value=4.0, labels={"b": "2", "a": "1"})), None, 2, 13
        ),
        RawRecord(raw(point(ts=T0 + 9, value=5.0)), None, 2, 14),
    ]
    out = MetricDecoder().decode(records, now=NOW)
    assert out.values.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert out.record_idx.tolist() == [0, 1, 1, 3, 4]
    assert out.series_idx.tolist() == [0, 0, 0, 1, 0]
    assert out.series == [
        SeriesKey("checkout", "latency_ms", ()),
        SeriesKey("search", "latency_ms", (("a", "1"), ("b", "2"))),
    ]
    assert out.ts.dtype == np.float64 and out.series_idx.dtype == np.int32
    assert [(r.partition, r.offset, r.field, r.points) for r in out.rejections] == [
        (2, 12, "json", 1)
    ]
    assert out.sources[3] == (2, 13)


class BareRecord(NamedTuple):
    """A record that does not say its partition, like aiokafka's bare records."""

    value: bytes | None
    key: bytes | None
    offset: int


def test_records_without_a_partition_take_the_one_given() -> None:
    records = [BareRecord(raw(point()), None, 20), BareRecord(b"{oops", b"k", 21)]
    out = MetricDecoder().decode(records, now=NOW, partition=5)
    assert [(r.partition, r.offset) for r in out.rejections] == [(5, 21)]
    assert list(out.sources) == [(5, 20), (5, 21)]
    with pytest.raises(AttributeError, match="partition"):
        MetricDecoder().decode(records, now=NOW).rejections  # noqa: B018 - nowhere to read it


def test_rejected_batch_reports_its_point_count() -> None:
    out = MetricDecoder().decode(
        [RawRecord(raw(batch(50, values=[1.0] * 49 + [-1.0])), None, 0, 7)], now=NOW
    )
    assert out.points == 0
    assert out.rejections[0].points == 50
    assert out.rejections[0].reason.startswith("values[49]: -1.0 is negative")


def test_empty_and_tombstone_records() -> None:
    out = MetricDecoder().decode([RawRecord(None, b"k", 0, 1)], now=NOW)
    assert out.rejections[0].reason == "json: empty record (no value)"
    assert MetricDecoder().decode([], now=NOW).points == 0


def _per_point(out: Any) -> list[tuple[Any, ...]]:
    """The decoded points as (record index, series, ts bits, value bits)."""
    return [
        (r, out.series[s], t.tobytes(), v.tobytes())
        for r, s, t, v in zip(
            out.record_idx.tolist(), out.series_idx.tolist(), out.ts, out.values, strict=True
        )
    ]


def assert_same_as_one_by_one(
    values: list[bytes | None], decoder: MetricDecoder | None = None
) -> None:
    """Decoding ``values`` together gives what decoding each alone gives."""
    records = [RawRecord(v, None, 1, 100 + i) for i, v in enumerate(values)]
    whole = (decoder or MetricDecoder()).decode(records, now=NOW)
    points: list[tuple[Any, ...]] = []
    rejections = []
    for i, rec in enumerate(records):
        alone = MetricDecoder().decode([rec], now=NOW)
        points += [(i, *p[1:]) for p in _per_point(alone)]
        rejections += [(i, r.offset, r.field, r.reason, r.points) for r in alone.rejections]
    assert _per_point(whole) == points
    assert [
        (r.index, r.offset, r.field, r.reason, r.points) for r in whole.rejections
    ] == rejections
    assert list(whole.sources) == [(1, 100 + i) for i in range(len(values))]
    assert whole.series == list(dict.fromkeys(p[1] for p in points))


GOOD = raw(point())
TRICKY: list[bytes | None] = [
    b'{"a":"',  # a string that would span into the next record
    b'"}',
    b'{"x":1},{"y":2}',  # two objects in one record
    b'{"a":[{}',  # an array that would span into the next record
    b"{}]}",
    b"{},{}",
    b'{"a":1',
    b' "b":2}',
    b' {"service":"checkout","metric":"latency_ms","value":1,"ts":1700000000}',
    b'{"service":"checkout","metric":"latency_ms","value":1,"ts":1700000000}\n',
    b'{"service":"checkout","metric":"latency_ms","value":1,"ts":1700000000}]',
    b'{"service":"checkout","metric":"latency_ms","value":1,"ts":1700000000},',
    b"\xef\xbb\xbf" + GOOD,
    b"\xed\xa0\x80",  # a UTF-8 encoded surrogate
    b"\xff",
    None,
    b"",
    b"null",
    b"{}",
    b'{"service":"checkout","metric":"latency_ms","value":1e400,"ts":1700000000}',
    b'{"service":"checkout","metric":"latency_ms","value":NaN,"ts":1700000000}',
    b'{"service":"checkout","metric":"latency_ms","value":-Infinity,"ts":1700000000}',
    b'{"service":"checkout","metric":"latency_ms","value":' + b"9" * 400 + b',"ts":1700000000}',
    b'{"service":"checkout","metric":"latency_ms","value":true,"ts":1700000000}',
    b'{"service":"checkout","metric":"latency_ms","value":"1","ts":1700000000}',
    b'{"service":"checkout","metric":"latency_ms","value":1,"ts":1700000000,"ts":5}',
    b'{"service":"check out","metric":"latency_ms","value":1,"ts":1700000000}',
    b'{"service":"checkout","metric":"memory_bytes","value":-1,"ts":1700000000}',
    b'{"service":"checkout","metric":"latency_ms","value":1,"ts":1700000000,"labels":{"a":"[1]"}}',
    raw(point(value=-0.0, metric="custom_delta")),
    raw(point(value=-0.0)),
    b'{"service":"checkout","metric":"custom_delta","value":-0,"ts":1700000000}',
    raw(point(value=2**53 + 1, ts=int(T0))),
    raw(point(value=12345678901234567891)),
    raw(point(value=5e-324, metric="custom_delta")),
    raw(point(ts=T0 + 1e7)),
    raw(point(labels={}, schema_version=1)),
    raw(batch(3, values=[1, 2.5, 3])),
    raw(batch(2, values=[1e400, 1])),
    GOOD,
    raw(point(service="search", metric="cache_hits", value=3)),
]


WARM = MetricDecoder()  # knows the good names: takes the fast paths when it can
WARM.decode([RawRecord(v, None, 0, 0) for v in TRICKY], now=NOW)


@pytest.mark.parametrize("size", [2, 3, 5, len(TRICKY)])
def test_many_records_decode_as_each_alone(size: int) -> None:
    for i in range(0, len(TRICKY), size):
        assert_same_as_one_by_one(TRICKY[i : i + size])
        assert_same_as_one_by_one(TRICKY[i : i + size], WARM)


def test_shuffled_mixes_decode_as_each_alone() -> None:
    rng = np.random.default_rng(7)
    for _ in range(100):
        picks = rng.integers(0, len(TRICKY), int(rng.integers(2, 9)))
        assert_same_as_one_by_one([TRICKY[i] for i in picks], WARM)


@pytest.mark.parametrize(
    "values",
    [
        [1.5, 2.5, -0.0, 0.0, 7.0],  # only plain points: the column-wise path
        [1, 2**53 + 1, 12345678901234567891, 3.25, 5e-324],  # ints, rounded like float(int)
        [1.0, 2.0, -1.0],  # negative memory: rejected by the record-by-record path
    ],
)
def test_plain_points_decode_as_each_alone(values: list[float]) -> None:
    metrics = ["latency_ms", "custom_delta", "memory_bytes"]
    recs = [
        raw(point(value=v, ts=T0 + i, metric=metrics[i % 3], service=f"s{i % 2}"))
        for i, v in enumerate(values)
    ]
    warm = MetricDecoder()
    warm.decode([RawRecord(r, None, 0, 0) for r in recs], now=NOW)  # names now known
    assert_same_as_one_by_one(recs, warm)
    assert_same_as_one_by_one(recs)


PARSER_EDGES: list[bytes | None] = [
    *TRICKY,
    raw(point(labels={"zone": "\ud800"})),  # a lone surrogate escape: only the stdlib takes it
    b'{"service":"checkout","metric":"latency_ms","value":1,"ts":1700000000,"labels":'
    + b'{"a":' * 300
    + b"1"
    + b"}" * 301,  # nesting deeper than pydantic-core's limit
    b'{"service":"checkout","metric":"latency_ms","value":1,"ts":1700000000,"labels":{"a":"x\x01"}}',
    b'{"service":"checkout","metric":"latency_ms","value":01,"ts":1700000000}',
    b'{"service":"checkout","metric":"latency_ms","value":1.,"ts":1700000000}',
    b'{"service":"checkout","metric":"latency_ms","value":1,"ts":1700000000,}',
    raw(batch(3, values=[0.1, 2.2250738585072011e-308, 1.7976931348623157e308])),
    b'{"service":"checkout","metric":"latency_ms","ts":[1700000000,1700000001],"values":[1E2,-0]}',
]


def test_the_fast_parser_decides_as_the_standard_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """pydantic-core parses the values; the outcome must be exactly the standard library's."""
    import json

    import perfloop.streams.record_json

    records = [RawRecord(v, None, 2, i) for i, v in enumerate(PARSER_EDGES)]
    fast = [MetricDecoder().decode([r], now=NOW) for r in records]
    monkeypatch.setattr(
        perfloop.streams.record_json, "from_json", lambda raw: json.loads(raw.decode())
    )
    slow = [MetricDecoder().decode([r], now=NOW) for r in records]
    for value, a, b in zip(PARSER_EDGES, fast, slow, strict=True):
        assert _per_point(a) == _per_point(b), value
        assert [(r.field, r.reason) for r in a.rejections] == [
            (r.field, r.reason) for r in b.rejections
        ], value
    assert_same_as_one_by_one(PARSER_EDGES)
