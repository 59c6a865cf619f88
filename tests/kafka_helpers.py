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
        partitions = partitions_of(consumer, topic, timeout_s)
        consumer.assign(partitions)
        while time.monotonic() < deadline:
            got.extend(consumer)
            if count is not None and len(got) >= count:
                break
            if count is None and got and at_ends(consumer, consumer.end_offsets(partitions)):
                break
    finally:
        consumer.close()
    wanted = f"{count} records" if count is not None else "records"
    assert got and len(got) >= (count or 1), (
        f"waited {timeout_s:g}s for {wanted} on {topic}, got {len(got)}"
    )
    return got


def partitions_of(consumer: Any, topic: str, timeout_s: float) -> list[TopicPartition]:
    """The partitions of ``topic``, once the consumer's metadata knows them."""
    deadline = time.monotonic() + timeout_s
    while not (ids := consumer.partitions_for_topic(topic)):
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout_s:g}s for the partitions of {topic}")
        time.sleep(0.1)
    return [TopicPartition(topic, p) for p in sorted(ids)]


def at_ends(consumer: Any, ends: dict[TopicPartition, int]) -> bool:
    """Whether the consumer holds every partition of ``ends`` and has read up to its offset."""
    return set(ends) <= consumer.assignment() and all(
        consumer.position(tp) >= end for tp, end in ends.items()
    )
