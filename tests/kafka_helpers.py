"""Small Kafka helpers shared by the broker tests: create a topic, read a topic from the start.

Every wait is bounded and its failure message says what it waited for.
"""

from __future__ import annotations

import time
from typing import Any

from kafka import KafkaConsumer
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
    count) everything there is once the first records came and the topic went quiet."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=500,
    )
    got: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            batch = list(consumer)
            got.extend(batch)
            if count is not None and len(got) >= count:
                break
            if count is None and got and not batch:
                break
    finally:
        consumer.close()
    wanted = f"{count} records" if count is not None else "records"
    assert got and len(got) >= (count or 1), (
        f"waited {timeout_s:g}s for {wanted} on {topic}, got {len(got)}"
    )
    return got
