"""``perfloop produce``, ``perfloop tail`` and :class:`MetricProducer`, with kcat on the side."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kafka_helpers import create_topic

from perfloop.actions.kafka_clients import KafkaConsumer, KafkaProducer
from perfloop.produce import MetricProducer, produce_lines
from perfloop.schemas.messages import Breach, MetricBatch

needs_kcat = pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed")
NOW = time.time() - 60


def perfloop(
    broker: str, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PERFLOOP_BROKER": broker, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "perfloop.cli", *args],
        input=stdin, capture_output=True, text=True, timeout=60, env=full_env,
    )  # fmt: skip


def kcat_read(broker: str, topic: str, count: int, timeout_s: float = 20.0) -> list[dict[str, Any]]:
    """Every message of ``topic`` as kcat's JSON envelopes, retrying until there are ``count``."""
    deadline = time.monotonic() + timeout_s
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        done = subprocess.run(
            ["kcat", "-b", broker, "-C", "-t", topic, "-e", "-o", "beginning", "-J", "-q"],
            capture_output=True, text=True, timeout=timeout_s, check=True,
        )  # fmt: skip
        found = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        if len(found) >= count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"waited {timeout_s}s for {count} messages on {topic} via kcat: {found}")


def point(service: str, metric: str, value: float, i: int, **labels: str) -> str:
    body: dict[str, Any] = {"service": service, "metric": metric, "value": value, "ts": NOW + i}
    if labels:
        body["labels"] = labels
    return json.dumps(body)


# -- without a broker ------------------------------------------------------------------------


def test_bad_lines_are_reported_with_their_number_and_reason() -> None:
    sent: list[tuple[str, bytes, bytes]] = []
    producer = MetricProducer("unused:9092", batch_size=10, send=lambda *m: sent.append(m))
    lines = [
        point("api", "latency_ms", 1.0, 0),
        "",
        "{not json",
        point("api", "memory_bytes", -5.0, 1),
        '{"service": "api", "metric": "latency_ms", "value": 2.0}',
        point("api", "latency_ms", 3.0, 2),
    ]
    errors = io.StringIO()
    summary = produce_lines(lines, producer, errors=errors, source="in.jsonl")
    producer.close()
    reported = errors.getvalue().splitlines()
    assert [r.split(": ", 1)[0] for r in reported] == ["in.jsonl:3", "in.jsonl:4", "in.jsonl:5"]
    assert "memory_bytes" in reported[1] and "negative" in reported[1]
    assert "ts: Field required" in reported[2]
    assert (summary.points, summary.bad, summary.batches) == (2, 3, 1)
    assert json.loads(sent[0][2])["values"] == [1.0, 3.0]


# -- on the broker ---------------------------------------------------------------------------


@needs_kcat
@pytest.mark.broker
def test_kcat_produces_and_tail_json_reads_back(broker: str, unique: str) -> None:
    topic = create_topic(broker, f"kcat.in.{unique}")
    values = [point(f"svc{i % 3}", "latency_ms", 10.0 + i, i) for i in range(12)]
    lines = "".join(f"svc{i % 3}:{v}\n" for i, v in enumerate(values))
    subprocess.run(
        ["kcat", "-b", broker, "-P", "-t", topic, "-K:"], input=lines.encode(), check=True,
        timeout=30,
    )  # fmt: skip
    kcat_read(broker, topic, len(values))  # all of them are on the broker

    done = perfloop(broker, "tail", topic, "--json", "--no-follow")
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.splitlines()) == sorted(values)

    done = perfloop(broker, "tail", topic, "--json", "--no-follow", "--max", "5")
    assert len(done.stdout.splitlines()) == 5


@needs_kcat
@pytest.mark.broker
def test_produce_batches_that_kcat_reads_as_metric_batches(
    broker: str, unique: str, tmp_path: Path
) -> None:
    topic = create_topic(broker, f"produce.{unique}")
    lines = [point("api", "latency_ms", float(i), i) for i in range(7)]
    lines += [point("api", "latency_ms", 1.0, i, region="eu") for i in range(2)]
    lines += [point("web", "cache_hits", 5.0, 0), "not json at all"]
    source = tmp_path / "points.jsonl"
    source.write_text("\n".join(lines) + "\n")

    done = perfloop(broker, "produce", str(source), "--topic", topic, "--batch-size", "3")
    assert done.returncode == 1, "a bad line makes the exit code 1"
    assert f"{source}:11: " in done.stderr and "Invalid JSON" in done.stderr, done.stderr
    assert "sent 10 points in 5 batches" in done.stdout

    messages = kcat_read(broker, topic, 5)
    batches = [MetricBatch.model_validate_json(m["payload"]) for m in messages]
    assert all(m["key"] == b.service for m, b in zip(messages, batches, strict=True))
    sizes = sorted((b.service, b.metric, tuple(b.labels.items()), len(b.ts)) for b in batches)
    assert sizes == [
        ("api", "latency_ms", (), 1), ("api", "latency_ms", (), 3), ("api", "latency_ms", (), 3),
        ("api", "latency_ms", (("region", "eu"),), 2), ("web", "cache_hits", (), 1),
    ]  # fmt: skip
    unlabelled = sorted(
        (b for b in batches if b.metric == "latency_ms" and not b.labels), key=lambda b: b.ts[0]
    )
    assert [v for b in unlabelled for v in b.values] == [float(i) for i in range(7)]

    done = perfloop(
        broker, "produce", "-", "--topic", topic, "--allow-bad", stdin="oops\n" + lines[0]
    )
    assert done.returncode == 0 and "stdin:1: " in done.stderr, done.stderr


@pytest.mark.broker
def test_metric_producer_sends_lingering_batches_on_its_own(broker: str, unique: str) -> None:
    topic = create_topic(broker, f"api.{unique}", 1)
    producer = MetricProducer(broker, topic=topic, batch_size=1000, linger_s=0.2)
    producer.record("checkout", "latency_ms", 12.5, labels={"route": "/pay"})
    producer.record("checkout", "latency_ms", 13.5)
    consumer = KafkaConsumer(
        topic, bootstrap_servers=broker, auto_offset_reset="earliest",
        enable_auto_commit=False, consumer_timeout_ms=300,
    )  # fmt: skip
    got: list[Any] = []
    deadline = time.monotonic() + 15
    while len(got) < 2 and time.monotonic() < deadline:
        got.extend(consumer)  # no flush(): the linger thread must send them
    consumer.close()
    producer.close()
    assert len(got) == 2, f"waited 15 s for 2 lingering batches on {topic}, got {len(got)}"
    assert {r.key for r in got} == {b"checkout"}
    assert sorted(MetricBatch.model_validate_json(r.value).values[0] for r in got) == [12.5, 13.5]


@pytest.mark.broker
def test_tail_prints_a_compact_line_for_a_known_topic(broker: str, unique: str) -> None:
    topic = create_topic(broker, f"perfloop.breaches.{unique}", 1)
    breach = Breach(
        breach_id="checkout:latency:1700000000000", service="checkout", area="latency",
        signal="latency_ms.p95", observed=612.0, threshold=500.0, direction="above",
        window_start=1_700_000_000.0, window_end=1_700_000_010.0,
        first_window_start=1_700_000_000.0, windows=2,
    )  # fmt: skip
    producer = KafkaProducer(bootstrap_servers=broker)
    producer.send(topic, key=b"checkout", value=breach.model_dump_json().encode())
    producer.send(topic, key=b"checkout", value=b"not a breach")
    producer.flush(20)
    producer.close()

    env = {"PERFLOOP_TOPICS__NAMES__BREACHES": topic, "TZ": "UTC"}
    done = perfloop(broker, "tail", topic, "--from", "earliest", "--no-follow", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "22:13:30 checkout latency p95 612.0 > 500.0 (breach checkout:latency:1700000000000)",
        "not a breach",
    ]
