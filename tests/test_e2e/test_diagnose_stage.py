"""Breaches in, diagnoses out, on the real broker; labels teach the models; kill -9 keeps them.

The test sends each window of a synthetic history as one metric point per series (the
series' mean), then a point that closes the last window; the services follow one another in
event time, so no point is late.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer
from loop_support import Worker

from perfloop.models.synthetic import synthetic_history
from perfloop.schemas.config import PerfloopConfig, TopicNames
from perfloop.schemas.messages import Diagnosis, Label, WindowAggregate
from perfloop.streams.diagnose_stage import MODEL_FILE

pytestmark = pytest.mark.broker


def write_config(path: Path, config: PerfloopConfig) -> None:
    names = config.topics.names.model_dump()
    lines = [
        "[broker]",
        f'bootstrap = "{config.broker.bootstrap}"',
        "[topics]",
        f"partitions = {config.topics.partitions}",
        "[topics.names]",
        *(f'{k} = "{v}"' for k, v in names.items()),
        "[worker]",
        f'app_id = "{config.worker.app_id}"',
        f'state_dir = "{config.worker.state_dir}"',
        "session_timeout_s = 6",
        "heartbeat_interval_s = 1",
        "[diagnosis]",
        "min_labels = 0",
        "[detection.memory]",
        'direction = "above"',
        "fire = 1e9",
        "clear = 5e8",
        "for_windows = 1",
    ]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def worker(config: PerfloopConfig, topics: TopicNames, tmp_path: Path) -> Iterator[Worker]:
    config_file = tmp_path / "perfloop.toml"
    write_config(config_file, config)
    w = Worker(config_file, tmp_path / "worker.log")
    w.start()
    yield w
    w.stop()


class HistorySender:
    """Sends histories as metric points, each one later in event time than the one before."""

    def __init__(self, producer: KafkaProducer, topic: str, config: PerfloopConfig) -> None:
        self.producer, self.topic = producer, topic
        self.length = config.windows.length_s
        self.close_after = config.windows.lateness_s + self.length
        self.at = math.floor(time.time() / self.length) * self.length - 3600.0

    def send(self, service: str, windows: list[WindowAggregate]) -> None:
        for i, w in enumerate(windows):
            ts = self.at + i * self.length + 1.0
            for s in w.series:
                self.point(service, s.metric, s.mean, ts)
        self.at += len(windows) * self.length
        self.point(service, "queue_depth", 0.0, self.at + self.close_after)  # closes the last
        self.at += 2 * self.close_after
        self.producer.flush(10)

    def point(self, service: str, metric: str, value: float, ts: float) -> None:
        body = {"service": service, "metric": metric, "value": value, "ts": ts}
        self.producer.send(self.topic, key=service.encode(), value=json.dumps(body).encode())


class DiagnosisReader:
    """Reads the diagnoses topic from the start, across calls."""

    def __init__(self, broker: str, topic: str) -> None:
        self.consumer = KafkaConsumer(
            topic,
            bootstrap_servers=broker,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=500,
        )
        self.seen: dict[str, Diagnosis] = {}

    def wait_for(self, service: str, timeout_s: float, log: Path) -> Diagnosis:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for record in self.consumer:
                d = Diagnosis.model_validate_json(record.value)
                self.seen.setdefault(d.service, d)
            if service in self.seen:
                return self.seen[service]
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise AssertionError(
            f"waited {timeout_s}s for a diagnosis of {service}; saw {sorted(self.seen)}\n{tail}"
        )


def wait_for_file(path: Path, what: str, log: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise AssertionError(f"waited {timeout_s:g}s for {what} ({path})\n{tail}")
        time.sleep(0.1)


def test_breaches_become_diagnoses_labels_teach_and_kill9_keeps_the_models(
    broker: str, config: PerfloopConfig, topics: TopicNames, worker: Worker, tmp_path: Path
) -> None:
    base = synthetic_history("memory", "cache", random.Random(7), start=time.time() - 600)
    producer = KafkaProducer(bootstrap_servers=broker)
    reader = DiagnosisReader(broker, topics.diagnoses)
    history = HistorySender(producer, topics.metrics, config)
    log = tmp_path / "worker.log"

    # 1. a breach in, a diagnosis out, with probabilities, decider and attributions
    history.send("svc-a", base)
    first = reader.wait_for("svc-a", 90, log)
    assert first.area == "memory" and first.incident_id
    assert set(first.probabilities) == {"cache", "model", "workers"}
    assert abs(sum(first.probabilities.values()) - 1) < 1e-6
    assert first.decider in {"river", "torch", "ensemble"}
    assert len(first.top_features) == config.diagnosis.top_features
    assert {f.name for f in first.top_features} <= set(first.features)
    assert 0 <= first.attribution_entropy <= 1 and 0 <= first.attribution_sparsity <= 1

    # 2. a label on the labels topic changes the next prediction for the same features
    wrong = min(first.probabilities, key=lambda c: first.probabilities[c])
    label = Label(
        incident_id=first.incident_id, service="svc-a", area="memory", cause=wrong, ts=time.time()
    )
    producer.send(topics.labels, key=b"svc-a", value=label.model_dump_json().encode())
    producer.flush(10)
    # the label agent learns asynchronously; it writes the models file after each label
    wait_for_file(Path(config.worker.state_dir) / "models" / MODEL_FILE, "the learned label", log)
    history.send("svc-b", base)
    second = reader.wait_for("svc-b", 60, log)
    assert second.features == first.features, "the test meant to send identical features"
    assert second.probabilities[wrong] > first.probabilities[wrong], (
        f"the label {wrong!r} did not move the prediction: {first.probabilities} -> "
        f"{second.probabilities}"
    )
    assert second.labels_seen == first.labels_seen + 1

    # 3. kill -9 and restart: the learned state survives
    worker.kill9()
    worker.start()
    history.send("svc-c", base)
    third = reader.wait_for("svc-c", 90, log)
    assert third.probabilities == pytest.approx(second.probabilities, abs=1e-9)
    assert third.labels_seen == second.labels_seen
    producer.close()
    reader.consumer.close()
    assert json.loads(first.model_dump_json())["schema_version"] == 1
