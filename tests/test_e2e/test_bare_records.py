"""The ingest consumer's bare records carry what aiokafka's full records carry, fetch for fetch."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from kafka_helpers import create_topic

from perfloop.actions.kafka_clients import KafkaProducer
from perfloop.streams.kafka.bare_records import use_bare_records

pytestmark = pytest.mark.broker


def write_mixed(broker: str, topic: str) -> None:
    """Records as producers write them: plain and gzip batches, a tombstone, and a committed
    and an aborted transaction (whose control batches sit between the records)."""
    plain = KafkaProducer(bootstrap_servers=broker, linger_ms=5)
    for i in range(300):
        plain.send(topic, key=f"k{i % 7}".encode(), value=b"v%d" % i, partition=i % 2)
    plain.send(topic, key=b"gone", value=None, partition=0)
    plain.flush(10)
    plain.close()
    gzip = KafkaProducer(bootstrap_servers=broker, compression_type="gzip", linger_ms=50)
    for i in range(200):
        gzip.send(topic, value=b"z%d" % i, partition=i % 2)
    gzip.flush(10)
    gzip.close()
    tx = KafkaProducer(bootstrap_servers=broker, transactional_id=f"{topic}-tx")
    tx.init_transactions()
    for outcome in ("commit", "abort", "commit"):
        tx.begin_transaction()
        for i in range(20):
            tx.send(topic, value=f"{outcome}-{i}".encode(), partition=i % 2)
        tx.flush(10)
        if outcome == "commit":
            tx.commit_transaction()
        else:
            tx.abort_transaction()
    tx.close()


async def read_all(broker: str, topic: str, bare: bool, isolation: str) -> tuple[list[Any], bool]:
    """(every record of the topic's two partitions, as (partition, offset, key, value), and
    whether the bare records were in use), read with ``getmany`` up to the end offsets."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level=isolation,
        max_partition_fetch_bytes=2048,  # many small fetches: many fetched-partition entries
    )
    await consumer.start()
    try:
        used = use_bare_records(consumer) if bare else False
        tps = [TopicPartition(topic, p) for p in (0, 1)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        got: list[Any] = []
        kinds: set[bool] = set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not all([await consumer.position(tp) >= ends[tp] for tp in tps]):
            assert loop.time() < deadline, f"waited 30 s to read {topic} to {ends}"
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                got += [(tp.partition, r.offset, r.key, r.value) for r in records]
                kinds |= {isinstance(r, ConsumerRecord) for r in records}
        assert kinds == {not bare}, kinds
        return got, used
    finally:
        await consumer.stop()


@pytest.mark.parametrize("isolation", ["read_uncommitted", "read_committed"])
def test_bare_records_match_full_records(broker: str, unique: str, isolation: str) -> None:
    topic = create_topic(broker, f"bare-{unique}", partitions=2)
    write_mixed(broker, topic)
    full, _ = asyncio.run(read_all(broker, topic, bare=False, isolation=isolation))
    bare, used = asyncio.run(read_all(broker, topic, bare=True, isolation=isolation))
    assert used, "this aiokafka does not allow bare records"
    assert sorted(bare) == sorted(full)  # the partitions interleave as the fetches come
    values = {value for _, _, _, value in full}
    assert {b"v0", b"z199", None, b"commit-19"} <= values
    assert (b"abort-0" in values) is (isolation == "read_uncommitted")
    # 300 plain + 1 tombstone + 200 gzip + 2 committed x 20, and 20 aborted when uncommitted
    assert len(full) == 541 + (20 if isolation == "read_uncommitted" else 0)
