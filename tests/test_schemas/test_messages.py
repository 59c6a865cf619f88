"""Every rejection class names the field and the offending value."""

from __future__ import annotations

import json
import time

import pytest
from pydantic import ValidationError

from perfloop.schemas.messages import (
    ActionCommand,
    Breach,
    Diagnosis,
    Label,
    MetricBatch,
    MetricPoint,
    SeriesAggregate,
)

NOW = time.time()
POINT = {"service": "checkout", "metric": "latency_ms", "value": 12.5, "ts": NOW}
BATCH = {"service": "checkout", "metric": "memory_bytes", "ts": [NOW, NOW + 1], "values": [1, 2]}


def rejects(model: type, data: object, field: str, shown: str) -> str:
    with pytest.raises(ValidationError) as info:
        if isinstance(data, str | bytes):
            model.model_validate_json(data)
        else:
            model.model_validate(data)
    text = str(info.value)
    assert field in text, f"the error does not name the field {field!r}:\n{text}"
    assert shown in text, f"the error does not show the value {shown!r}:\n{text}"
    return text


def test_valid_point_and_batch_round_trip_through_json() -> None:
    point = MetricPoint.model_validate(POINT)
    assert MetricPoint.model_validate_json(point.model_dump_json()) == point
    batch = MetricBatch.model_validate(BATCH)
    assert batch.values == [1.0, 2.0]
    assert batch.schema_version == 1


def test_malformed_json() -> None:
    rejects(MetricPoint, b'{"service": "a", "metric": ', "json", "EOF")


def test_wrong_types() -> None:
    rejects(MetricPoint, {**POINT, "value": "fast"}, "value", "fast")
    rejects(MetricPoint, {**POINT, "service": 17}, "service", "17")
    rejects(MetricBatch, {**BATCH, "ts": "yesterday"}, "ts", "yesterday")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers(bad: float) -> None:
    rejects(MetricPoint, {**POINT, "value": bad}, "value", "is not a finite number")
    rejects(MetricBatch, {**BATCH, "values": [1.0, bad]}, "values.1", "is not a finite number")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_window_aggregates(bad: float) -> None:
    series = {"metric": "latency_ms", "count": 2, "sum": 3.0, "min": 1.0, "max": 2.0}
    series |= {"mean": 1.5, "last": 2.0, "p50": 1.0, "p95": 2.0, "p99": 2.0, "sample": [1.0, 2.0]}
    rejects(SeriesAggregate, {**series, "p95": bad}, "p95", f"input_value={bad!r}")
    rejects(SeriesAggregate, {**series, "sample": [1.0, bad]}, "sample.1", "finite number")
    raw = json.dumps({**series, "mean": bad})  # Python writes NaN and Infinity
    rejects(SeriesAggregate, raw, "mean", "finite number")


def test_nan_in_json_text() -> None:
    raw = json.dumps({**POINT, "value": float("nan")})  # Python writes NaN
    rejects(MetricPoint, raw, "value", "nan")


def test_negative_memory() -> None:
    rejects(MetricPoint, {**POINT, "metric": "memory_bytes", "value": -5}, "value", "-5.0")
    rejects(MetricBatch, {**BATCH, "values": [1, -2]}, "-2.0", "memory_bytes")


def test_negative_value_of_a_custom_metric_is_allowed() -> None:
    assert (
        MetricPoint.model_validate({**POINT, "metric": "temperature_delta", "value": -3}).value
        == -3
    )


def test_mismatched_batch_lengths() -> None:
    rejects(
        MetricBatch, {**BATCH, "values": [1, 2, 3]}, "values", "length 3 differs from ts length 2"
    )


def test_oversize_strings_and_lists() -> None:
    rejects(MetricPoint, {**POINT, "service": "s" * 300}, "service", "at most 128 characters")
    labels = {f"k{i}": "v" for i in range(40)}
    rejects(MetricPoint, {**POINT, "labels": labels}, "labels", "at most 16 items")
    rejects(MetricPoint, {**POINT, "service": "no spaces allowed"}, "service", "no spaces")


def test_timestamps_out_of_range() -> None:
    rejects(MetricPoint, {**POINT, "ts": NOW + 30 * 86400}, "ts", "in the future")
    rejects(MetricPoint, {**POINT, "ts": 1_700_000_000_000}, "ts", "in the future")  # ms
    rejects(MetricPoint, {**POINT, "ts": 12}, "ts", "before 2000-01-01")


def test_unknown_field() -> None:
    rejects(MetricPoint, {**POINT, "colour": "red"}, "colour", "red")


def breach(**over: object) -> dict[str, object]:
    base = {
        "breach_id": "checkout:latency:1", "service": "checkout", "area": "latency",
        "signal": "latency_p95_ms", "observed": 612.0, "threshold": 500.0,
        "direction": "above", "window_start": NOW - 10, "window_end": NOW,
        "first_window_start": NOW - 20, "windows": 2,
    }  # fmt: skip
    return {**base, **over}


def test_unknown_area() -> None:
    rejects(Breach, breach(area="disk"), "area", "disk")


def test_unknown_cause_and_remedy() -> None:
    label = {
        "incident_id": "i",
        "service": "s",
        "area": "memory",
        "cause": "cosmic_rays",
        "ts": NOW,
    }
    rejects(Label, label, "cause", "cosmic_rays")
    command = {
        "action_id": "i:a1", "incident_id": "i", "service": "s", "area": "memory",
        "cause": "cache", "remedy": "index_optimization", "attempt": 1, "issued_at": NOW,
        "expires_at": NOW + 60, "key_id": "default", "signature": "0" * 64,
    }  # fmt: skip
    rejects(ActionCommand, command, "remedy", "index_optimization")
    ok = ActionCommand.model_validate({**command, "remedy": "reduce_ttl"})
    assert ok.remedy == "reduce_ttl"


def test_diagnosis_probabilities_must_name_the_areas_causes() -> None:
    diag = {
        "diagnosis_id": "d", "breach_id": "b", "service": "s", "area": "memory",
        "cause": "cache", "probabilities": {"cache": 0.7, "network": 0.3},
        "decider": "prior", "top_features": [], "attribution_entropy": 0.5,
        "attribution_sparsity": 0.1, "window_end": NOW,
    }  # fmt: skip
    rejects(Diagnosis, diag, "probabilities", "network")


def test_a_window_finds_a_series_by_metric_and_labels() -> None:
    from perfloop.schemas.messages import WindowAggregate

    def series(metric: str, value: float, **labels: str) -> dict[str, object]:
        return {"metric": metric, "labels": labels, "count": 1, "sum": value, "min": value,
                "max": value, "mean": value, "last": value, "p50": value, "p95": value,
                "p99": value}  # fmt: skip

    rows = [series("latency_ms", 1.0, route="/a"), series("latency_ms", 2.0),
            series("latency_ms", 3.0), series("cpu_util", 0.5)]  # fmt: skip
    window = WindowAggregate.model_validate(
        {"window_id": "api:0", "service": "api", "start": 0.0, "end": 10.0, "series": rows}
    )
    found = window.get("latency_ms")
    assert found is not None and found.p95 == 2.0  # the unlabelled one, the first of two
    labelled = window.get("latency_ms", {"route": "/a"})
    assert labelled is not None and labelled.p95 == 1.0
    assert window.get("latency_ms", {"route": "/b"}) is None and window.get("memory") is None
    assert window == WindowAggregate.model_validate_json(window.model_dump_json())
    assert "_by_metric" not in window.model_dump_json()
    other = window.model_copy(update={"series": window.series[2:]})
    copied = other.get("latency_ms")
    assert copied is not None and copied.p95 == 3.0  # not what the original found
