"""Event-time windows of one partition: aggregates, watermark, lateness, idleness, state."""

from __future__ import annotations

import json
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import pytest

from perfloop.schemas.config import WindowsConfig
from perfloop.schemas.messages import WindowAggregate
from perfloop.streams import windows
from perfloop.streams.decode import MetricDecoder, RawRecord
from perfloop.streams.exact_sum import exact_sums
from perfloop.streams.windows import PartitionWindows

T0 = 1_700_000_000.0
NOW = T0 + 100_000
CFG = WindowsConfig(length_s=10, lateness_s=2, idle_timeout_s=30, sample_size=16)

Row = tuple[str, str, float, float]  # service, metric, ts, value


def records(rows: Sequence[Row], first_offset: int = 0) -> list[RawRecord]:
    out = []
    for i, (service, metric, ts, value) in enumerate(rows):
        body = {"service": service, "metric": metric, "value": value, "ts": ts}
        out.append(RawRecord(json.dumps(body).encode(), service.encode(), 0, first_offset + i))
    return out


def feed(pw: PartitionWindows, recs: list[RawRecord], batch_size: int) -> list[WindowAggregate]:
    dec = MetricDecoder()
    closed: list[WindowAggregate] = []
    for i in range(0, len(recs), batch_size):
        closed += pw.update(dec.decode(recs[i : i + batch_size], now=NOW)).closed
    return closed


def random_rows(n: int, seed: int = 0) -> list[Row]:
    rng = np.random.default_rng(seed)
    ts = T0 + np.sort(rng.uniform(0, 60, n)) + rng.uniform(-1.5, 0, n)  # disorder < lateness
    services = rng.choice(["api", "search", "auth"], n)
    metrics = rng.choice(["latency_ms", "memory_bytes"], n)
    values = np.round(rng.lognormal(3, 1, n))  # integers: sums are exact in any order
    rows = zip(services, metrics, ts, values, strict=True)
    return [(str(s), str(m), float(t), float(v)) for s, m, t, v in rows]


def flush(pw: PartitionWindows) -> list[WindowAggregate]:
    assert pw.last_wall is not None
    return pw.advance_idle(pw.last_wall + 10_000)


def all_windows(recs: list[RawRecord], pw: PartitionWindows | None = None) -> list[WindowAggregate]:
    """Every window of ``recs``: those they close, then the rest once the partition idles."""
    pw = pw or PartitionWindows(CFG)
    closed = pw.update(MetricDecoder().decode(recs, now=NOW), wall=NOW).closed
    return closed + pw.advance_idle(NOW + 10_000)


def test_aggregates_match_numpy() -> None:
    rows = random_rows(3000)
    pw = PartitionWindows(CFG)
    dec = MetricDecoder()
    closed = []
    for i in range(0, len(rows), 100):
        closed += pw.update(dec.decode(records(rows[i : i + 100]), now=NOW), wall=0.0).closed
    closed += flush(pw)
    assert pw.late_points == 0
    assert [(w.start, w.service) for w in closed] == sorted((w.start, w.service) for w in closed)
    seen = 0
    for agg in closed:
        assert agg.window_id == f"{agg.service}:{int(agg.start * 1000)}"
        assert agg.end == agg.start + 10
        assert [s.metric for s in agg.series] == sorted(s.metric for s in agg.series)
        for s in agg.series:
            mine = [
                (t, v)
                for (svc, m, t, v) in rows
                if svc == agg.service and m == s.metric and agg.start <= t < agg.end
            ]
            vals = np.array([v for _, v in mine])
            seen += vals.size
            assert (s.count, s.sum, s.min, s.max) == (vals.size, vals.sum(), vals.min(), vals.max())
            assert s.mean == pytest.approx(vals.mean())
            assert s.last == max(mine, key=lambda tv: tv[0])[1]
            for q, got in ((0.5, s.p50), (0.95, s.p95), (0.99, s.p99)):
                want = float(np.percentile(vals, q * 100, method="lower"))
                assert abs(got - want) <= 0.01 * want
            assert len(s.sample) == min(16, vals.size)
            assert set(s.sample) <= set(vals.tolist())
    assert seen == len(rows)


@pytest.fixture(params=[0, 97, windows.PENDING_POINTS], ids=lambda n: f"held{n}")
def held_points(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many points the windows hold before adding them to cells: 0 adds every batch's
    points at once, the default only at a window's close."""
    monkeypatch.setattr(windows, "PENDING_POINTS", request.param)
    return int(request.param)


@pytest.mark.parametrize("batch_size", [1, 7, 250])
def test_result_does_not_depend_on_batch_boundaries(batch_size: int, held_points: int) -> None:
    rows = random_rows(1500, seed=3)
    rows += [("api", "latency_ms", T0 + 5, 1.0)]  # late: its window closed long ago
    whole = PartitionWindows(CFG)
    want = feed(whole, records(rows), len(rows))
    pw = PartitionWindows(CFG)
    got = feed(pw, records(rows), batch_size)
    assert [w.model_dump() for w in got] == [w.model_dump() for w in want]
    assert pw.late_points == whole.late_points >= 1
    assert pw.to_json()["cells"] == whole.to_json()["cells"]


def test_window_closes_when_watermark_reaches_its_end() -> None:
    pw = PartitionWindows(CFG)
    dec = MetricDecoder()
    assert pw.update(dec.decode(records([("api", "latency_ms", T0 + 1, 5.0)]), NOW)).closed == []
    # watermark = 11.9 - 2 = 9.9 < 10: still open
    assert pw.update(dec.decode(records([("api", "latency_ms", T0 + 11.9, 6.0)]), NOW)).closed == []
    assert pw.watermark == pytest.approx(T0 + 9.9)
    # watermark = 12 - 2 = 10 >= end: closes
    out = pw.update(dec.decode(records([("api", "latency_ms", T0 + 12, 7.0)]), NOW))
    assert [(w.start, w.series[0].count) for w in out.closed] == [(T0, 1)]


def test_late_points_are_returned_with_their_record_and_not_added() -> None:
    pw = PartitionWindows(CFG)
    dec = MetricDecoder()
    rows: list[Row] = [
        ("api", "latency_ms", T0 + 1, 1.0),
        ("api", "latency_ms", T0 + 25, 2.0),  # watermark 23: [0, 10) and [10, 20) closed
        ("api", "latency_ms", T0 + 9, 3.0),  # late
        ("api", "latency_ms", T0 + 19.5, 4.0),  # late
        ("api", "latency_ms", T0 + 24, 5.0),  # on time: [20, 30) still open
    ]
    out = pw.update(dec.decode(records(rows, first_offset=100), NOW))
    assert [(r.offset, r.partition, r.points) for r in out.late] == [(102, 0, 1), (103, 0, 1)]
    assert out.late_points == 2 == pw.late_points
    assert [(w.start, w.series[0].sum) for w in out.closed] == [(T0, 1.0)]
    assert pw.advance_idle(1e12) == []  # never given a wall clock: idleness is unknown
    pw.update(dec.decode(records([("api", "latency_ms", T0 + 24.5, 6.0)]), NOW), wall=50.0)
    assert [(w.start, w.series[0].sum) for w in flush(pw)] == [(T0 + 20, 13.0)]


def test_late_points_of_a_batch_message_are_counted_per_record() -> None:
    pw = PartitionWindows(CFG)
    dec = MetricDecoder()
    msg = {
        "service": "api",
        "metric": "latency_ms",
        "ts": [T0 + 30, T0 + 1, T0 + 2, T0 + 29],
        "values": [1, 2, 3, 4],
    }
    out = pw.update(dec.decode([RawRecord(json.dumps(msg).encode(), None, 4, 9)], NOW))
    assert [(r.partition, r.offset, r.points) for r in out.late] == [(4, 9, 2)]


def test_last_is_the_value_with_greatest_event_time_ties_by_arrival() -> None:
    pw = PartitionWindows(CFG)
    rows: list[Row] = [
        ("api", "latency_ms", T0 + 5, 1.0),
        ("api", "latency_ms", T0 + 7, 2.0),
        ("api", "latency_ms", T0 + 6, 3.0),
        ("api", "latency_ms", T0 + 7, 4.0),
    ]
    feed(pw, records(rows), 2)
    pw.update(MetricDecoder().decode(records([("api", "latency_ms", T0 + 6.5, 9.0)]), NOW), 0.0)
    (agg,) = flush(pw)
    assert agg.series[0].last == 4.0


def test_idle_partition_advances_its_watermark_after_the_timeout() -> None:
    pw = PartitionWindows(CFG)
    pw.update(MetricDecoder().decode(records([("api", "cache_hits", T0 + 3, 1.0)]), NOW), 1000.0)
    assert pw.advance_idle(1029.0) == []
    out = pw.advance_idle(1031.0)
    assert [w.window_id for w in out] == [f"api:{int(T0 * 1000)}"]
    assert pw.watermark == T0 + 3 + 31
    assert pw.advance_idle(1100.0) == []


def test_several_services_close_in_order_of_start_then_service() -> None:
    rows: list[Row] = [
        ("zeta", "latency_ms", T0 + 1, 1.0),
        ("alpha", "latency_ms", T0 + 2, 1.0),
        ("alpha", "latency_ms", T0 + 13, 1.0),
        ("mid", "latency_ms", T0 + 11, 1.0),
        ("zeta", "latency_ms", T0 + 40, 1.0),
    ]
    closed = feed(PartitionWindows(CFG), records(rows), 10)
    assert [(w.start - T0, w.service) for w in closed] == [
        (0, "alpha"),
        (0, "zeta"),
        (10, "alpha"),
        (10, "mid"),
    ]


def test_restored_state_continues_identically() -> None:
    rows = random_rows(2000, seed=9)
    recs = records(rows)
    a = PartitionWindows(CFG)
    first = feed(a, recs[:1100], 100)
    raw = a.to_bytes()
    b = PartitionWindows.from_bytes(raw)
    assert b.to_bytes() == raw
    rest_a = feed(a, recs[1100:], 100)
    rest_b = feed(b, recs[1100:], 100)
    assert [w.model_dump() for w in rest_a] == [w.model_dump() for w in rest_b]
    assert a.to_json() == b.to_json()
    assert first and rest_a


def test_a_state_of_another_form_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="window state: b'{\"ve' is not the mark b'PWB1'"):
        PartitionWindows.from_bytes(json.dumps(PartitionWindows(CFG).to_json()).encode())


def test_sample_is_deterministic_bounded_and_spans_the_window() -> None:
    msg = {
        "service": "api",
        "metric": "latency_ms",
        "ts": [T0 + i * 0.001 for i in range(9000)],
        "values": list(range(9000)),
    }
    recs = [RawRecord(json.dumps(msg).encode(), None, 0, 0)]
    samples = []
    for _ in range(2):
        pw = PartitionWindows(CFG)
        pw.update(MetricDecoder().decode(recs, NOW), wall=0.0)
        (agg,) = flush(pw)
        samples.append(agg.series[0].sample)
    assert samples[0] == samples[1]
    assert len(samples[0]) == 16 and len(set(samples[0])) == 16
    assert max(samples[0]) > 1000  # not just the first values


def test_negative_and_zero_values_of_custom_metrics() -> None:
    rows: list[Row] = [
        ("api", "temperature_delta", T0 + i, v) for i, v in enumerate([-5.0, 0.0, 3.0, -1.0])
    ]
    pw = PartitionWindows(CFG)
    pw.update(MetricDecoder().decode(records(rows), NOW), wall=0.0)
    (agg,) = flush(pw)
    s = agg.series[0]
    assert (s.min, s.max, s.sum, s.count) == (-5.0, 3.0, -3.0, 4)
    assert -5.0 <= s.p50 <= 3.0


def test_state_stays_small_per_series() -> None:
    rows = [
        (f"svc{i % 50}", "latency_ms", T0 + (i % 997) / 100, float(1 + i % 300))
        for i in range(20_000)
    ]
    pw = PartitionWindows(CFG)
    feed(pw, records(rows), 2000)
    assert pw.open_cells == 50
    assert len(pw.to_bytes()) / 50 < 4000


def test_single_points_of_many_series_match_bulk_adds_bit_for_bit(held_points: int) -> None:
    """One point a (series, window) and small groups take plain-Python paths; large groups
    take numpy's. Any batching gives the same state, to the bit."""
    rng = np.random.default_rng(5)
    special = [0.0, 5e-324, -1e300, 1e-310, 2.5, -7.25]  # not -0.0: min(0.0, -0.0) is either
    rows: list[Row] = []
    for i in range(3000):
        metric = str(rng.choice(["latency_ms", "temperature_delta"]))
        if metric == "latency_ms":
            value = float(rng.lognormal(0, 3))
        else:
            value = float(rng.choice(special)) if rng.random() < 0.3 else float(rng.normal() * 50)
        ts = T0 + i * 0.02 + float(rng.uniform(-1.5, 0))
        rows.append((f"svc{int(rng.integers(0, 40))}", metric, ts, value))
    recs = records(rows)
    states = []
    for batch_size in (1, 5, 40, 3000):
        pw = PartitionWindows(CFG)
        feed(pw, recs, batch_size)
        states.append(pw.to_bytes())
    assert states[1:] == states[:-1]


def test_points_held_for_their_window_stay_within_the_bound(held_points: int) -> None:
    """Points wait for their window's close unfolded, but never more than the bound: past it
    they are added to their cells at once, with the same result."""
    recs = records(random_rows(3000, seed=4))
    whole = PartitionWindows(CFG)
    want = feed(whole, recs, len(recs))
    pw = PartitionWindows(CFG)
    dec = MetricDecoder()
    got: list[WindowAggregate] = []
    for i in range(0, len(recs), 40):
        got += pw.update(dec.decode(recs[i : i + 40], now=NOW)).closed
        assert pw._pending_points <= held_points
    assert got and [w.model_dump() for w in got] == [w.model_dump() for w in want]
    assert pw.to_bytes() == whole.to_bytes()


def test_exact_sums_agree_whichever_way_they_group() -> None:
    rng = np.random.default_rng(2)
    values = np.concatenate([rng.normal(size=500) * 10.0 ** rng.integers(-300, 300, 500)])
    values[::7] = 0.0
    values[::11] = 5e-324
    cuts = np.sort(rng.choice(np.arange(1, 500), 60, replace=False))
    starts = np.concatenate(([0], cuts)).astype(np.intp)
    bounds = [*starts.tolist(), 500]
    want = [
        int(sum(map(Fraction, values[s:e].tolist())) * 2**1074)
        for s, e in zip(bounds, bounds[1:], strict=False)
    ]
    assert exact_sums(values, starts) == want  # wide exponents: sorted per (group, exponent)
    narrow = rng.lognormal(0, 1, 500)
    want = [
        int(sum(map(Fraction, narrow[s:e].tolist())) * 2**1074)
        for s, e in zip(bounds, bounds[1:], strict=False)
    ]
    assert exact_sums(narrow, starts) == want  # few exponents: counted per bin
    assert exact_sums(narrow, np.arange(500)) == [int(Fraction(v) * 2**1074) for v in narrow]


def test_emitted_windows_are_those_returned_and_counted() -> None:
    """With ``emit`` the same windows come out, one by one, and the stage counts them."""
    from perfloop.streams.window_stage import WindowStage

    recs = records(random_rows(2000, seed=3))
    returned = feed(PartitionWindows(CFG), recs, 250)
    emitted: list[WindowAggregate] = []
    pw = PartitionWindows(CFG)
    dec = MetricDecoder()
    for i in range(0, len(recs), 250):
        update = pw.update(dec.decode(recs[i : i + 250], now=NOW), wall=NOW, emit=emitted.append)
        assert update.closed == []
    assert returned and emitted == returned
    assert pw.open_cells > 0  # the last windows are still open: the idle flush emits them
    assert pw.advance_idle(NOW + 10_000, emit=emitted.append) == []
    assert pw.open_cells == 0 and len(emitted) > len(returned)

    stage, sink = WindowStage(CFG), []
    for i in range(0, len(recs), 250):
        assert stage.process(0, recs[i : i + 250], NOW, emit=sink.append).windows == []
    closed = stage.advance_idle(NOW + 10_000, emit=sink.append)
    assert list(closed) == [0] and closed[0] == []
    assert sink == emitted and stage.counters(0).windows == len(sink)


def test_series_ids_compacted_away_keep_each_cells_seed() -> None:
    """Series that stop sending are forgotten once their windows close; the series left get
    new ids, and their cells the same seeds (so the same samples) as in a fresh partition."""

    def batches(windows: range) -> list[RawRecord]:
        out = []
        for window in windows:  # 1,500 series a window, all new every window
            for series in range(window * 1500, window * 1500 + 1500):
                ts = [T0 + window * 10 + j / 4 + series / 1e4 for j in range(20)]
                body = {"service": f"svc{series}", "metric": "latency_ms", "ts": ts,
                        "values": [float(series % 97 + j) for j in range(20)]}  # fmt: skip
                out.append(RawRecord(json.dumps(body).encode(), None, 0, len(out)))
        return out

    pw = PartitionWindows(CFG)
    closed = feed(pw, batches(range(5)), 500)
    assert len(pw._series) < 4500  # the first windows' series were let go
    fresh = PartitionWindows(CFG)
    again = feed(fresh, batches(range(3, 5)), 500)
    want = [w.model_dump() for w in again if w.start == T0 + 30]
    assert len(want) == 1500 and all(len(s["sample"]) == 16 for w in want for s in w["series"])
    assert [w.model_dump() for w in closed if w.start == T0 + 30] == want


def test_series_closed_without_cells_match_series_closed_from_cells(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A series whose points are all still held when its window closes, and fit the sample,
    gets its aggregate computed with the others at once, without a cell. The same points
    added to cells as they come give the same windows to the bit: sums rounded once (also
    where they saturate or cancel past the float range), the last by event time (ties by
    arrival), quantiles and samples."""
    rng = np.random.default_rng(8)
    choices = {
        "temperature_delta": [1e308, -1e308, 8.5e307],  # sums past the float range
        "queue_delta": [0.0, -2.5, 3.0, 0.1, 0.2, 0.3],  # zeros, negatives, rounding
    }
    rows: list[Row] = []
    for i in range(4000):
        metric = str(rng.choice(["latency_ms", "memory_bytes", *choices]))
        if metric in choices:
            value = float(rng.choice(choices[metric]))
        else:
            value = float(rng.lognormal(0, 2))
        ts = T0 + round(i * 0.015, 1) + float(rng.choice([0.0, -0.5]))  # ties in event time
        # a few services get more points a window than the sample holds
        rows.append((f"svc{int(rng.integers(0, 60 if i % 3 else 3))}", metric, ts, value))
    recs = records(rows)
    held = feed(PartitionWindows(CFG), recs, 250)
    monkeypatch.setattr(windows, "PENDING_POINTS", 0)  # every batch goes into cells at once
    from_cells = feed(PartitionWindows(CFG), recs, 250)
    assert held and [w.model_dump() for w in held] == [w.model_dump() for w in from_cells]
    sums = [s.sum for w in held for s in w.series]
    assert max(sums) == 1.7976931348623157e308 and min(sums) == -1.7976931348623157e308
    counts = [s.count for w in held for s in w.series]
    assert min(counts) <= CFG.sample_size < max(counts)  # both kinds of series were closed


def test_windows_are_built_as_validation_would_build_them() -> None:
    """Windows are built from the stage's own numbers without validating them again: each
    equals the window that validating its fields gives, to its JSON, labels and extreme
    values included, whether its series went through cells or not."""
    rng = np.random.default_rng(11)
    choices = {
        "latency_ms": None,
        "temperature_delta": [1e308, -1e308, 8.5e307],  # sums saturate
        "queue_delta": [0.0, -2.5, 3.0, 0.1],
    }
    recs = []
    for i in range(3000):
        labels = {"route": f"/r{int(rng.integers(0, 3))}"} if i % 4 == 0 else {}
        metric = list(choices)[i % 3]
        picks = choices[metric]
        value = float(rng.lognormal()) if picks is None else float(rng.choice(picks))
        service = f"svc{i % 7}" if i % 3 else f"few{i % 150}"  # many points a window, few
        body = {"service": service, "metric": metric, "value": value, "ts": T0 + i * 0.02,
                "labels": labels}  # fmt: skip
        recs.append(RawRecord(json.dumps(body).encode(), None, 0, i))
    closed = all_windows(recs)
    assert any(s.labels for w in closed for s in w.series)
    counts = [s.count for w in closed for s in w.series]
    assert min(counts) <= CFG.sample_size < max(counts)  # with cells, and without
    assert max(s.sum for w in closed for s in w.series) == 1.7976931348623157e308
    for window in closed:
        validated = WindowAggregate.model_validate(window.model_dump())
        assert window == validated
        assert window.model_dump_json() == validated.model_dump_json()
        assert all(type(v) is float for s in window.series for v in (s.sum, s.mean, s.p99))


def test_a_window_whose_id_is_too_long_for_a_message_is_dropped_and_counted() -> None:
    service = "s" * 128  # a name points may have; its window id is longer than a name
    rows = [(service, "latency_ms", T0 + 1, 5.0), ("api", "latency_ms", T0 + 2, 6.0)]
    pw = PartitionWindows(CFG)
    closed = all_windows(records(rows), pw)
    assert [w.service for w in closed] == ["api"] and pw.dropped.windows == 1
