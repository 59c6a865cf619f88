"""Any Kafka client can feed perfloop: kafka-python, aiokafka, kcat and Kafka's own tools."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from pathlib import Path

import jsonschema
import pytest
from kafka import KafkaProducer
from kafka_helpers import read_records

from perfloop.actions.signing import Keyring, build_command, verify
from perfloop.broker.local import LocalKafka
from perfloop.schemas.config import TopicNames
from perfloop.schemas.export import export_json_schemas
from perfloop.schemas.messages import ActionCommand, MetricPoint
from perfloop.streams.decode import MetricDecoder

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
        except TimeoutError:
            raise AssertionError(f"waited 20s for the point on {topics.metrics}") from None
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
    records = read_records(broker, topics.metrics, 1)
    decoded = MetricDecoder().decode(records, now=time.time())  # the worker's own decoder
    assert decoded.rejections == [], decoded.rejections
    assert [k.metric for k in decoded.series] == ["memory_bytes"]
    assert decoded.values.tolist() == [3.4e10] and decoded.ts.tolist() == [ts]
    assert MetricPoint.model_validate_json(records[0].value).value == 3.4e10


def test_kafka_console_producer_writes_a_batch_perfloop_accepts(
    broker: str, topics: TopicNames
) -> None:
    from perfloop.schemas.messages import MetricBatch

    ts = time.time()
    batch = {"service": "search", "metric": "latency_ms", "ts": [ts, ts + 1], "values": [3, 4]}
    argv = LocalKafka().java_tool(
        "org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server", broker,
        "--topic", topics.metrics,
    )  # fmt: skip
    subprocess.run(argv, input=(json.dumps(batch) + "\n").encode(), check=True, timeout=60)
    records = read_records(broker, topics.metrics, 1)
    decoded = MetricDecoder().decode(records, now=time.time())
    assert decoded.rejections == [] and decoded.values.tolist() == [3.0, 4.0]
    assert MetricBatch.model_validate_json(records[0].value).values == [3.0, 4.0]


@pytest.mark.skipif(shutil.which("kcat") is None, reason="Debian's kcat is not installed")
def test_kcat_reads_signed_commands_that_validate_against_the_exported_schema(
    broker: str, topics: TopicNames, tmp_path: Path
) -> None:
    keys = Keyring.parse("clients-test-secret-0123456789")
    command = build_command(
        incident_id="checkout:memory:1", service="checkout", area="memory", cause="cache",
        remedy="reduce_ttl", params={"factor": 0.4}, attempt=1, issued_at=time.time(),
        ttl_s=300, keys=keys,
    )  # fmt: skip
    producer = KafkaProducer(bootstrap_servers=broker)
    producer.send(topics.actions, key=b"checkout", value=command.model_dump_json().encode())
    producer.flush(10)
    producer.close()
    out = subprocess.run(
        ["kcat", "-b", broker, "-C", "-t", topics.actions, "-o", "beginning", "-e", "-q",
         "-f", "%k\t%s\n"],
        capture_output=True, check=True, timeout=30,
    )  # fmt: skip
    key, value = out.stdout.decode().strip().split("\t", 1)
    export_json_schemas(tmp_path)
    schema = json.loads((tmp_path / "action_command.schema.json").read_text())
    jsonschema.validate(json.loads(value), schema)
    assert key == "checkout"
    assert verify(ActionCommand.model_validate_json(value), keys, now=time.time()) is None
