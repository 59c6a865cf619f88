"""The detect stage's per-service window history: compact, exact, and bounded."""

from __future__ import annotations

import json

import numpy as np
import pytest

from perfloop.schemas.messages import SeriesAggregate, WindowAggregate
from perfloop.streams.history import History, decode, encode

T0 = 1_760_000_000.0


def window(start: float, seed: int) -> WindowAggregate:
    rng = np.random.default_rng(seed)
    series = []
    for metric, labels in (("latency_ms", {}), ("cache_hits", {"tier": "l1"}), ("cpu_util", {})):
        values = rng.lognormal(3, 1, 50)
        series.append(
            SeriesAggregate(
                metric=metric, labels=labels, count=values.size, sum=float(values.sum()),
                min=float(values.min()), max=float(values.max()), mean=float(values.mean()),
                last=float(values[-1]), p50=float(np.median(values)),
                p95=float(np.percentile(values, 95)), p99=float(np.percentile(values, 99)),
                sample=values[:8].tolist(),
            )
        )  # fmt: skip
    return WindowAggregate(
        window_id=f"api:{round(start * 1000)}", service="api", start=start, end=start + 10,
        series=series,
    )  # fmt: skip


def without_samples(w: WindowAggregate) -> dict[str, object]:
    data = w.model_dump()
    for s in data["series"]:
        s["sample"] = []
    return data


def test_windows_come_back_exactly_without_their_samples() -> None:
    history = History.load(None)
    windows = [window(T0 + 10 * i, i) for i in range(4)]
    for w in windows:
        history.append(w, keep=6)
    back = decode(History.load(history.blob).blob)
    assert [b.model_dump() for b in back] == [without_samples(w) for w in windows]
    assert History.load(history.blob).latest == windows[-1].start


def test_only_the_last_windows_are_kept_and_the_size_stays_small() -> None:
    history = History.load(None)
    for i in range(20):
        history.append(window(T0 + 10 * i, i), keep=6)
    assert [w.start for w in decode(history.blob)] == [T0 + 10 * i for i in range(14, 20)]
    as_json = sum(len(window(T0, i).model_dump_json(exclude={"series": {"__all__": {"sample"}}}))
                  for i in range(6))  # fmt: skip
    assert len(history.blob) < 0.7 * as_json


def test_bytes_of_another_form_are_an_error_that_says_what_they_are() -> None:
    old = [without_samples(window(T0 + 10 * i, i)) for i in range(3)]
    for load in (History.load, decode):
        with pytest.raises(ValueError, match=r"bytes starting b'\[\{.{6}' are not a history"):
            load(json.dumps(old).encode())


def test_a_truncated_history_is_an_error_that_says_so() -> None:
    blob = History.load(None).blob + encode(window(T0, 1))
    with pytest.raises(ValueError, match="history: a record runs 5 bytes past the end"):
        History.load(blob[:-5])
    with pytest.raises(ValueError, match="history: 3 bytes at the end are not a record"):
        History.load(blob + b"abc")


def test_a_memo_decodes_a_window_shared_by_histories_once() -> None:
    history = History.load(None)
    blobs = []
    for i in range(8):
        history.append(window(T0 + 10 * i, i), keep=3)
        blobs.append(history.blob)
    memo: dict[bytes, WindowAggregate] = {}
    decoded = [decode(blob, memo) for blob in blobs]
    assert [[w.model_dump() for w in ws] for ws in decoded] == [
        [w.model_dump() for w in decode(blob)] for blob in blobs
    ]
    assert len(memo) == 8  # eight distinct windows in 21 places
    assert decoded[3][2] is decoded[4][1] is decoded[5][0] is not decode(blobs[5])[0]
    with pytest.raises(ValueError, match="history: a record runs"):
        decode(blobs[-1] + encode(window(T0 + 90, 9))[:-5], memo)
    assert len(memo) == 8  # a bad history adds nothing
