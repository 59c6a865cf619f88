"""Any Kafka client can feed perfloop: kafka-python, aiokafka, kcat and Kafka's own tools."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time

import pytest
from kafka import KafkaProducer
from kafka_helpers import read_records

from perfloop.broker.local import LocalKafka
from schemas.config import TopicNames
from schemas.messages import MetricPoint

pytestmark = pytest.mark.broker


def test_kafka_python_produces_and_aiokafka_consumes(broker: str, topics: TopicNames) -> None:
    point = MetricPoint(service="checkout", metric="latency_ms", value=42.0, ts=time.time())
    producer = KafkaProducer(bootstrap_servers=broker)
    producer.send(topics.metrics, key=b"checkout", value=point.model_dump_json().encode())
    producer.flush(10)
    producer.close()

    async def consume() -> bytes:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(
            topics.metrics, bootstrap_servers=broker, auto_offset_reset="earliest",
            enable_auto_commit=False,
        )  # fmt: skip
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), timeout=20)
        finally:
            await consumer.stop()
        assert record.key == b"checkout"
        return record.value

    raw = asyncio.run(consume())
    assert MetricPoint.model_validate_json(raw) == point


@pytest.mark.skipif(shutil.which("kcat") is None, reason="Debian's kcat is not installed")
def test_kcat_writes_a_metric_perfloop_accepts(broker: str, topics: TopicNames) -> None:
    ts = time.time()
    line = f'checkout:{{"service":"checkout","metric":"memory_bytes","value":3.4e10,"ts":{ts}}}\n'
    subprocess.run(
        ["kcat", "-b", broker, "-P", "-t", topics.metrics, "-K:"],
        input=line.encode(), check=True, timeout=30,
    )  # fmt: skip
    (raw,) = [r.value for r in read_records(broker, topics.metrics, 1)]
    point = MetricPoint.model_validate_json(raw)
    assert point.metric == "memory_bytes" and point.value == 3.4e10


def test_kafka_console_producer_writes_a_batch_perfloop_accepts(
    broker: str, topics: TopicNames
) -> None:
    from schemas.messages import MetricBatch

    ts = time.time()
    batch = {"service": "search", "metric": "latency_ms", "ts": [ts, ts + 1], "values": [3, 4]}
    argv = LocalKafka().java_tool(
        "org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server", broker,
        "--topic", topics.metrics,
    )  # fmt: skip
    subprocess.run(argv, input=(json.dumps(batch) + "\n").encode(), check=True, timeout=60)
    (raw,) = [r.value for r in read_records(broker, topics.metrics, 1)]
    assert MetricBatch.model_validate_json(raw).values == [3.0, 4.0]
