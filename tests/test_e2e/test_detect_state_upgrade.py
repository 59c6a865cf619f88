"""A worker started over detect state that an earlier worker wrote in the two-record layout
(the detector's JSON under the service's name, its history under ``h:<service>``, and a
breach's snapshot under ``b:<breach id>``) picks each service up where it was, on the real
broker, and leaves it in the one-record layout."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka_helpers import read_records
from window_builders import series, window
from worker_support import (
    WorkerProcess,
    create_topics,
    point,
    produce,
    trailing_points,
    wait_processed,
    worker_config,
)

from perfloop.schemas.messages import WindowAggregate
from perfloop.streams.detect import breach_id
from perfloop.streams.history import decode
from perfloop.streams.service_state import MAGIC, ServiceState, history_in

pytestmark = pytest.mark.broker

SERVICE = "upgraded"
OLD_SNAPSHOT = b"b:upgraded:memory:1700000000000"  # an earlier breach's snapshot of windows


def latency(i: int, ms: float) -> WindowAggregate:
    return window(i, series("latency_ms", ms, p95=ms), service=SERVICE)


def test_a_two_record_state_is_read_and_replaced_by_one_record(broker: str, tmp_path: Path) -> None:
    config = worker_config(broker, tmp_path)
    create_topics(config)
    assert config.detection.latency.for_windows == 2, "the test fires on the second high window"
    # what an earlier worker left: one window at 100 ms, then one at 900 ms, not yet a breach
    earlier = ServiceState.load(None, None, config)
    for i, ms in enumerate([100.0, 900.0]):
        assert not earlier.observe(latency(i, ms), 6)
    changelog = f"{config.worker.app_id}-detect-state-changelog"
    admin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        admin.create_topics([NewTopic(changelog, config.topics.partitions, 1,
                                      topic_configs={"cleanup.policy": "compact"})])  # fmt: skip
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=broker)
    key = SERVICE.encode()
    detector = json.dumps(earlier.detector.to_json()).encode()
    try:
        sent = producer.send(changelog, key=key, value=detector).get(10)
        # all on the partition of the service's windows, where the worker wrote them
        for name, value in ((b"h:" + key, earlier.history_blob()), (OLD_SNAPSHOT, b"H\x01")):
            producer.send(changelog, key=name, value=value, partition=sent.partition)
        producer.flush(10)
    finally:
        producer.close()

    worker = WorkerProcess(config, tmp_path / "worker").start()
    # one more window at 900 ms, after the earlier worker's last
    at = window(2).start + 0.5
    try:
        worker.wait_ready()
        produce(broker, config.topics.names.metrics, [point(SERVICE, "latency_ms", 900.0, at)])
        ticks = trailing_points(at, config.topics.partitions, config.windows.lateness_s)
        produce(broker, config.topics.names.metrics, ticks, partitions=[0, 1, 2])
        wait_processed(config)
        records = wait_for_state(broker, changelog, key)
    finally:
        worker.stop()

    breaches = [json.loads(r.value) for r in read_records(broker, config.topics.names.breaches)]
    # the breach counts the earlier worker's high window: the detector state was read
    assert [b["breach_id"] for b in breaches] == [breach_id(SERVICE, "latency", window(1).start)]
    assert breaches[0]["windows"] == 2
    last = {r.key: r.value for r in records}
    starts = [w.start for w in decode(history_in(last[key]))]
    assert starts == [window(0).start, window(1).start, window(2).start], "history goes on"
    assert last[OLD_SNAPSHOT] is None, "the earlier breach snapshot is deleted"


def wait_for_state(broker: str, changelog: str, key: bytes, timeout_s: float = 30.0) -> list[Any]:
    """The changelog's records once ``key`` has a record in the one-record layout and its
    ``h:`` record is deleted (each the key's last record)."""
    deadline = time.monotonic() + timeout_s
    while True:
        records = read_records(broker, changelog)
        last = {r.key: r.value for r in records}
        if (last.get(key) or b"").startswith(MAGIC) and last.get(b"h:" + key, b"") is None:
            return records
        if time.monotonic() > deadline:
            raise AssertionError(
                f"waited {timeout_s:g}s for {key!r}'s one-record state and its h: record "
                f"deleted on {changelog}; the last records: "
                f"{ {k: v and v[:16] for k, v in last.items()} }"
            )
        time.sleep(0.2)
