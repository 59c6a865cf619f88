"""Small Kafka helpers shared by the broker tests: create a topic, read a topic from the start.

Every wait is bounded and its failure message says what it waited for.
"""

from __future__ import annotations

import time
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic


def create_topic(broker: str, name: str, partitions: int = 3) -> str:
    """Create ``name`` with ``partitions`` partitions; return its name."""
    admin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()
    return name


def read_records(
    broker: str, topic: str, count: int | None = None, timeout_s: float = 20.0
) -> list[Any]:
    """The records of ``topic`` from the start: at least ``count`` of them, or (without a
    count) every record up to the partitions' end offsets once there is at least one."""
    consumer = KafkaConsumer(
        bootstrap_servers=broker,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=500,
    )
    got: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        partitions: list[TopicPartition] = []
        while not partitions and time.monotonic() < deadline:
            ids = consumer.partitions_for_topic(topic) or set()
            partitions = [TopicPartition(topic, p) for p in sorted(ids)]
            if not partitions:
                time.sleep(0.1)
        consumer.assign(partitions)
        while partitions and time.monotonic() < deadline:
            got.extend(consumer)
            if count is not None and len(got) >= count:
                break
            if count is None and got:
                ends = consumer.end_offsets(partitions)
                if all(consumer.position(tp) >= ends[tp] for tp in partitions):
                    break
    finally:
        consumer.close()
    wanted = f"{count} records" if count is not None else "records"
    assert got and len(got) >= (count or 1), (
        f"waited {timeout_s:g}s for {wanted} on {topic}, got {len(got)}"
    )
    return got
