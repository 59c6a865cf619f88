"""The ingest on a real broker: a stopped ingest hands its partitions over through its
checkpoints, and the next owner neither loses nor double-counts a point."""

from __future__ import annotations

import asyncio
import json
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka_helpers import read_records

from perfloop.schemas.config import PerfloopConfig
from perfloop.schemas.topics import create_missing_topics, topic_catalog
from perfloop.streams.kafka.ingest import Ingest, checkpoint_topic, ingest_group

T0 = 1_760_000_000.0
SERVICES = [f"svc-{i}" for i in range(6)]


def _produce(broker: str, topic: str, start: float, seconds: int) -> int:
    """Two points a second for every service from ``start``; return how many."""
    producer = KafkaProducer(bootstrap_servers=broker, acks="all")
    sent = 0
    for step in range(seconds * 2):
        for service in SERVICES:
            body = {"service": service, "metric": "latency_ms", "value": 10.0 + step,
                    "ts": start + step / 2}  # fmt: skip
            producer.send(topic, key=service.encode(), value=json.dumps(body).encode())
            sent += 1
    producer.flush(30)
    producer.close()
    return sent


def _end_offsets(broker: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=broker)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return {tp.partition: end for tp, end in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


async def _own_until_caught_up(config: PerfloopConfig, timeout_s: float = 60.0) -> Ingest:
    """Start an ingest, poll until every partition's last applied offset is its end offset
    minus one, and stop it (checkpointing and committing); return it."""
    topic, parts = config.topics.names.metrics, config.topics.partitions
    ingest = Ingest(config)
    await ingest.start()
    try:
        await _run_until_caught_up(
            ingest, _end_offsets(config.broker.bootstrap, topic, parts), timeout_s
        )
    finally:
        await ingest.stop()
    return ingest


async def _run_until_caught_up(ingest: Ingest, ends: dict[int, int], timeout_s: float) -> None:
    """Poll until every partition's last applied offset is its end offset minus one."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        await ingest.poll(timeout_ms=100)
        applied = {p: ingest.stage.last_offset(p) for p in ingest.owned}
        if len(ingest.owned) == len(ends) and all(applied[p] == e - 1 for p, e in ends.items()):
            return
    raise AssertionError(
        f"waited {timeout_s:g}s for the ingest to apply offsets up to {ends}; it owns "
        f"{sorted(ingest.owned)} at {[ingest.stage.last_offset(p) for p in sorted(ingest.owned)]}"
    )


def test_a_stopped_ingest_hands_over_through_its_checkpoints(
    broker: str, config: PerfloopConfig
) -> None:
    names = config.topics.names
    parts = config.topics.partitions
    create_missing_topics(broker, topic_catalog(config.topics))
    # 0..15 s: window [0, 10) closes, [10, 20) is half full when the first ingest stops
    first = _produce(broker, names.metrics, T0, 15)

    asyncio.run(_own_until_caught_up(config))
    ends = _end_offsets(broker, names.metrics, parts)
    checkpoints = read_records(broker, checkpoint_topic(config).name)
    assert {r.partition for r in checkpoints} == {p for p, end in ends.items() if end}
    assert all(r.key == f"p{r.partition}".encode() for r in checkpoints)
    committed = KafkaConsumer(bootstrap_servers=broker, group_id=ingest_group(config))
    try:
        for p, end in ends.items():
            assert committed.committed(TopicPartition(names.metrics, p)) == (end or None), p
    finally:
        committed.close()

    # 15..25 s: the rest of [10, 20) and a point at 25 s that closes it
    second = _produce(broker, names.metrics, T0 + 15, 10)

    ingest = asyncio.run(_own_until_caught_up(config))
    windows = [json.loads(r.value) for r in read_records(broker, names.windows, 12)]
    ids = [w["window_id"] for w in windows]
    assert len(ids) == len(set(ids)), f"windows emitted twice: {sorted(ids)}"
    assert sorted(ids) == sorted(
        f"{s}:{round(start * 1000)}" for s in SERVICES for start in (T0, T0 + 10)
    )
    for w in windows:  # 20 points in each: the second window straddles the handover
        assert w["series"][0]["count"] == 20, w
    counted = sum(ingest.stage.counters(p).records for p in range(parts))
    assert counted == first + second  # the counters came along with the state
