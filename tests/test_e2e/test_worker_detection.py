"""The worker on the real broker: thresholds, hysteresis and dead-lettering, end to end.

One ``perfloop worker`` subprocess serves the whole module. One stream feeds several services
at once, each showing one rule: 1 s windows over 10 s of event time, in event-time order, then
a trailing point per partition that closes the last windows.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kafka import KafkaProducer
from kafka_helpers import read_records
from worker_support import (
    T0,
    Record,
    TopicReader,
    WorkerProcess,
    batch,
    create_topics,
    has_windows,
    point,
    produce,
    trailing_points,
    wait_committed,
    wait_processed,
    worker_config,
)

from perfloop.schemas.config import TopicNames
from perfloop.streams.detect import breach_id as breach_id_of
from perfloop.streams.detect_stage import HISTORY_HEADER
from perfloop.streams.history import decode as decode_history
from perfloop.streams.service_state import MAGIC as STATE_MAGIC

pytestmark = pytest.mark.broker

WINDOWS = 10
PER_WINDOW = 40
LAT_FOR_WINDOWS = 3  # the "lat-hi" service's own for_windows (the others keep 2)
HIGH_LATENCY = range(2, 7)  # windows of "lat-hi" above 500 ms
# "flap": p95 above fire, below clear, alternating; "flap-mid": fire twice, then in between
FLAP_MID = "HHMHMHHMHM"
# valid JSON (the module's readers parse every record), but not a breach
BAD_BREACH = (b"bad", b'{"breach_id":"bad:latency:1","service":"bad"}')
BARE_BREACH = "bad:latency:3"  # a valid breach sent without its windows
# a breach whose header of windows is not a history of windows
BAD_HISTORY = {
    "breach_id": "bad:latency:2", "service": "bad", "area": "latency",
    "signal": "latency_ms.p95", "observed": 900.0, "threshold": 500.0, "direction": "above",
    "window_start": T0, "window_end": T0 + 1, "first_window_start": T0, "windows": 2,
}  # fmt: skip


@dataclass
class Sent:
    """What the module produced: records in order, their event times and where they landed."""

    records: list[Record]
    sort_ts: list[float]
    where: list[tuple[int, int]]
    tags: dict[str, int]  # name of a special record -> its index
    latency: dict[tuple[str, int], list[float]]  # (service, window) -> latency values


@dataclass
class Output:
    sent: Sent
    windows: list[dict[str, Any]]
    breaches: list[dict[str, Any]]
    dead: list[dict[str, Any]]
    names: TopicNames
    state_records: list[Any]  # the detect-state topic
    window_records: list[Any]
    breach_records: list[Any]
    diagnoses: list[dict[str, Any]]

    def window(self, service: str, w: int) -> dict[str, Any]:
        wid = f"{service}:{round((T0 + w) * 1000)}"
        found = [x for x in self.windows if x["window_id"] == wid]
        assert found, f"no window {wid} among {sorted({x['window_id'] for x in self.windows})}"
        return found[0]

    def breaches_of(self, service: str) -> list[dict[str, Any]]:
        return [b for b in self.breaches if b["service"] == service]


def _ts(w: int, i: int, n: int = PER_WINDOW) -> float:
    return T0 + w + (i + 0.5) / n


def _stream() -> Sent:
    rng = np.random.default_rng(7)
    rows: list[tuple[float, Record, str]] = []
    latency: dict[tuple[str, int], list[float]] = {}

    def add_latency(service: str, w: int, low: float, high: float) -> None:
        values = np.round(rng.uniform(low, high, PER_WINDOW), 3).tolist()
        latency[(service, w)] = values
        rows.extend(
            (_ts(w, i), point(service, "latency_ms", v, _ts(w, i)), "")
            for i, v in enumerate(values)
        )

    for w in range(WINDOWS):
        hi = w in HIGH_LATENCY
        add_latency("lat-hi", w, 600.0, 900.0) if hi else add_latency("lat-hi", w, 50.0, 150.0)
        add_latency("flap", w, 550.0, 650.0) if w % 2 == 0 else add_latency("flap", w, 300, 400)
        band = {"H": (550.0, 650.0), "M": (460.0, 490.0)}[FLAP_MID[w]]
        add_latency("flap-mid", w, *band)
        for service, top in (("mem-hi", 33.7e9), ("mem-lo", 33.5e9)):
            for i in range(10):
                value = top if i == 5 else 30e9 + 1e8 * i
                rows.append(
                    (_ts(w, i, 10), point(service, "memory_bytes", value, _ts(w, i, 10)), "")
                )
        for service, hits, misses in (("cache-lo", 7.9, 2.1), ("cache-ok", 8.1, 1.9)):
            ts = [_ts(w, i, 10) for i in range(10)]
            rows.append((ts[-1], batch(service, "cache_hits", ts, [hits] * 10), ""))
            rows.append((ts[-1], batch(service, "cache_misses", ts, [misses] * 10), ""))
    # good, malformed and late input of one service, interleaved in one burst
    at = T0 + 0.25
    rows += [
        (at, point("ingest", "latency_ms", 10.0, at), "good-0"),
        (at, (b"ingest", b"{not json"), "malformed"),
        (at, point("ingest", "memory_bytes", -5.0, at), "negative"),
        (at, (b"ingest", b'{"service":"ingest","metric":"latency_ms","value":1,"ts":"soon"}'),
         "ts-text"),
        (T0 + 3.3, point("ingest", "latency_ms", 20.0, T0 + 3.3), "good-3"),
        (T0 + 3.5, point("ingest", "latency_ms", 30.0, T0 + 0.2), "late"),
    ]  # fmt: skip
    rows.sort(key=lambda r: r[0])  # stable: same-time records keep their order
    records = [r[1] for r in rows]
    tags = {tag: i for i, (_, _, tag) in enumerate(rows) if tag}
    return Sent(records, [r[0] for r in rows], [], tags, latency)


@pytest.fixture(scope="module")
def output(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Output]:
    folder: Path = tmp_path_factory.mktemp("detection")
    override = {"lat-hi": {"latency": {"for_windows": LAT_FOR_WINDOWS}}}
    config = worker_config(broker, folder, detection={"services": override})
    create_topics(config)
    names = config.topics.names
    worker = WorkerProcess(config, folder).start()
    readers = [TopicReader(broker, t) for t in (names.windows, names.breaches, names.dlq)]
    try:
        worker.wait_ready()
        sent = _stream()
        sent.where = produce(broker, names.metrics, sent.records)
        ticks = trailing_points(max(sent.sort_ts), 3, config.windows.lateness_s)
        produce(broker, names.metrics, ticks, partitions=[0, 1, 2])
        # bad messages from other clients on the topic the diagnose agent reads
        produce(broker, names.breaches, [BAD_BREACH])
        with KafkaProducer(bootstrap_servers=broker) as producer:
            headers = [(HISTORY_HEADER, b"H\x01 not a history")]
            bad = json.dumps(BAD_HISTORY).encode()
            producer.send(names.breaches, key=b"bad", value=bad, headers=headers).get(30)
            # a valid breach without the windows it was detected on
            bare = json.dumps({**BAD_HISTORY, "breach_id": BARE_BREACH}).encode()
            producer.send(names.breaches, key=b"bad", value=bare).get(30)
        services = ["lat-hi", "flap", "flap-mid", "mem-hi", "mem-lo", "cache-lo", "cache-ok"]
        expected = {f"{s}:{round((T0 + w) * 1000)}" for s in services for w in range(WINDOWS)}
        expected |= {f"ingest:{round((T0 + w) * 1000)}" for w in (0, 3)}
        readers[0].wait_until(has_windows(expected), f"windows {sorted(expected)}")
        wait_processed(config)  # every window, breach and dead letter of the input is out
        wait_committed(broker, config.worker.app_id, names.breaches, "every breach diagnosed")
        windows, breaches, dead = (reader.read_to_end() for reader in readers)
        windows, breaches = ([m for m in ms if m["service"] != "bad"] for ms in (windows, breaches))
        changelog = f"{config.worker.app_id}-detect-state-changelog"
        state_records = read_records(broker, changelog)
        window_records = read_records(broker, names.windows)
        breach_records = read_records(broker, names.breaches)
        diagnoses = [json.loads(r.value) for r in read_records(broker, names.diagnoses)]
        yield Output(
            sent, windows, breaches, dead, names, state_records, window_records, breach_records,
            diagnoses,
        )  # fmt: skip
    finally:
        for reader in readers:
            reader.close()
        worker.stop()


def test_p95_latency_above_500ms_for_the_configured_windows_breaches_once(output: Output) -> None:
    (breach,) = output.breaches_of("lat-hi")
    first, fired = HIGH_LATENCY[0], HIGH_LATENCY[0] + LAT_FOR_WINDOWS - 1
    assert breach["breach_id"] == breach_id_of("lat-hi", "latency", T0 + first)
    assert (breach["area"], breach["signal"]) == ("latency", "latency_ms.p95")
    assert (breach["window_start"], breach["windows"]) == (T0 + fired, LAT_FOR_WINDOWS)
    assert (breach["threshold"], breach["direction"]) == (500.0, "above")
    values = output.sent.latency[("lat-hi", fired)]
    low = float(np.quantile(values, 0.95, method="lower"))
    high = float(np.quantile(values, 0.95, method="higher"))
    assert low * 0.99 <= breach["observed"] <= high * 1.01, (breach["observed"], low, high)
    window = output.window("lat-hi", fired)
    series = {s["metric"]: s for s in window["series"]}["latency_ms"]
    assert series["p95"] == breach["observed"] and series["count"] == PER_WINDOW


def test_memory_above_33_6_gb_breaches_and_below_does_not(output: Output) -> None:
    (breach,) = output.breaches_of("mem-hi")
    assert breach["breach_id"] == breach_id_of("mem-hi", "memory", T0)
    assert (breach["signal"], breach["observed"], breach["windows"]) == (
        "memory_bytes.max", 33.7e9, 2,
    )  # fmt: skip
    assert output.breaches_of("mem-lo") == []
    assert output.window("mem-lo", 0)["series"][0]["max"] == 33.5e9


def test_cache_hit_rate_below_80_percent_breaches_and_above_does_not(output: Output) -> None:
    (breach,) = output.breaches_of("cache-lo")
    assert breach["breach_id"] == breach_id_of("cache-lo", "cache", T0)
    assert breach["signal"] == "cache_hit_rate"
    assert breach["observed"] == pytest.approx(0.79, abs=1e-9)
    assert output.breaches_of("cache-ok") == []
    sums = {s["metric"]: s["sum"] for s in output.window("cache-ok", 4)["series"]}
    assert sums["cache_hits"] / (sums["cache_hits"] + sums["cache_misses"]) == pytest.approx(0.81)


def test_a_value_oscillating_across_the_threshold_does_not_flap(output: Output) -> None:
    assert output.breaches_of("flap") == [], "alternating windows must never fire (for_windows=2)"
    (breach,) = output.breaches_of("flap-mid")  # fires once, never clears, never fires again
    assert breach["breach_id"] == breach_id_of("flap-mid", "latency", T0)
    per_area = Counter((b["service"], b["area"]) for b in output.breaches)
    assert all(n == 1 for n in per_area.values()), per_area
    assert sorted(per_area) == [
        ("cache-lo", "cache"), ("flap-mid", "latency"), ("lat-hi", "latency"),
        ("mem-hi", "memory"),
    ]  # fmt: skip


def test_malformed_and_late_input_is_dead_lettered_and_the_rest_is_processed(
    output: Output,
) -> None:
    sent = output.sent
    dead = [d for d in output.dead if d["source_topic"] == output.names.metrics]
    by_offset = {(d["partition"], d["offset"]): d for d in dead}
    assert len(by_offset) == len(dead) == 4, output.dead
    expect = {
        "malformed": ("invalid", "json", "json: malformed"),
        "negative": ("invalid", "value", "value: -5.0 is negative"),
        "ts-text": ("invalid", "ts", "ts: expected a number, got str 'soon'"),
        "late": ("late", "ts", "ts: 1 point(s) arrived after their window closed"),
    }
    for tag, (kind, field, reason) in expect.items():
        index = sent.tags[tag]
        dead = by_offset[sent.where[index]]
        assert (dead["kind"], dead["field"]) == (kind, field), dead
        assert dead["reason"].startswith(reason), dead
        key, value = sent.records[index]
        assert base64.b64decode(dead["value_b64"]) == value
        assert base64.b64decode(dead["key_b64"]) == key
        assert dead["source_topic"].startswith("metrics.")
    # the good points around them were windowed; the late one was not added
    first = output.window("ingest", 0)["series"]
    assert [(s["metric"], s["count"], s["max"]) for s in first] == [("latency_ms", 1, 10.0)]
    later = output.window("ingest", 3)["series"]
    assert [(s["metric"], s["count"], s["max"]) for s in later] == [("latency_ms", 1, 20.0)]
    assert json.loads(sent.records[sent.tags["late"]][1])["ts"] == T0 + 0.2


def test_bad_breaches_are_dead_lettered_and_diagnosis_goes_on(output: Output) -> None:
    names = output.names
    letters = [d for d in output.dead if d["source_topic"] == names.breaches]
    assert [d["kind"] for d in letters] == ["invalid", "invalid"], output.dead
    first, second = letters
    assert base64.b64decode(first["value_b64"]) == BAD_BREACH[1]
    assert base64.b64decode(first["key_b64"]) == BAD_BREACH[0]
    assert "Field required" in first["reason"], first
    assert json.loads(base64.b64decode(second["value_b64"])) == BAD_HISTORY
    assert f"header {HISTORY_HEADER}" in second["reason"], second
    # the breaches after the bad ones were still diagnosed (the group read past them all)
    assert output.breaches_of("lat-hi") and output.breaches_of("cache-lo")
    diagnosed = {d["breach_id"] for d in output.diagnoses}
    assert {b["breach_id"] for b in output.breaches} <= diagnosed


def test_a_breach_without_its_windows_is_diagnosed_from_none(output: Output) -> None:
    """A valid breach from another client, without the history header, still gets a
    diagnosis: every signal of its area is missing from the (empty) history."""
    (diagnosis,) = [d for d in output.diagnoses if d["breach_id"] == BARE_BREACH]
    assert diagnosis["features"]["latency_ms_missing"] == 1.0
    assert abs(sum(diagnosis["probabilities"].values()) - 1) < 1e-6
    letters = [d for d in output.dead if d["source_topic"] == output.names.breaches]
    assert all(json.loads(base64.b64decode(d["value_b64"]))["breach_id"] != BARE_BREACH
               for d in letters)  # fmt: skip


def test_each_breach_carries_the_windows_it_was_detected_on(output: Output) -> None:
    """The history header of a breach holds the service's windows up to the breach window,
    as the windows topic has them (aggregates; the samples are left out)."""
    published = {w["window_id"]: w for w in output.windows}
    checked = 0
    for record in output.breach_records:
        breach = json.loads(record.value)
        if breach["service"] == "bad":
            continue
        (history,) = [value for name, value in record.headers if name == HISTORY_HEADER]
        windows = decode_history(history)
        assert windows[-1].end == breach["window_end"], breach
        assert all(w.service == breach["service"] for w in windows)
        assert 2 <= len(windows) <= 6  # the breach's run of windows, within history_windows
        for w in windows:
            sent = published[w.window_id]
            got = w.model_dump(exclude={"series"})
            assert got == {k: sent[k] for k in got}, w.window_id
            assert [s.p95 for s in w.series] == [s["p95"] for s in sent["series"]]
        checked += 1
    assert checked == len(output.breaches), checked


def test_detection_state_is_written_to_the_partition_of_its_service(output: Output) -> None:
    """The ingest writes each service's detector and history as one record, on the partition
    of the service's metrics (the partition its windows went to as well)."""
    of_service = {r.key: r.partition for r in output.window_records}
    seen = Counter()
    for record in output.state_records:
        assert record.value.startswith(STATE_MAGIC), (record.key, record.value[:40])
        assert record.partition == of_service[record.key], (record.key, record.partition)
        seen[record.key] += 1
    assert set(seen) == set(of_service), sorted(seen)
