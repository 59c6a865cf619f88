"""``perfloop simulate`` on the real broker: metric batches keyed by service, a clean stop on
SIGTERM, and commands applied to the simulation through the embedded executor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from kafka_helpers import read_records

from perfloop.actions.kafka_clients import KafkaProducer
from perfloop.actions.signing import Keyring, build_command
from perfloop.cli import main
from perfloop.schemas.config import PerfloopConfig
from perfloop.schemas.messages import MetricBatch
from perfloop.simulator import Scenario, Simulation, metrics
from perfloop.simulator.runner import run

pytestmark = pytest.mark.broker


def simulate(broker: str, topic: str, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PERFLOOP_BROKER": broker,
        "PERFLOOP_TOPICS__NAMES__METRICS": topic,
        "PERFLOOP_TOPICS__PARTITIONS": "3",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "perfloop.cli", "simulate", "--no-executor", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def test_simulate_writes_metric_batches_keyed_by_service(broker: str, unique: str) -> None:
    topic = f"metrics.sim{unique}"
    proc = simulate(broker, topic, "--duration", "3", "--rate", "4")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "simulating 1 service (api)" in out and "throughput_target_rps = 200.0" in out
    records = read_records(broker, topic, timeout_s=10.0)
    seen = set()
    for record in records:
        batch = MetricBatch.model_validate_json(record.value)
        assert record.key == batch.service.encode() == b"api"
        seen.add(batch.metric)
    assert seen == set(metrics())
    points = sum(len(MetricBatch.model_validate_json(r.value).ts) for r in records)
    n = len(metrics())
    assert 3 * 4 * n * 0.7 <= points <= 4 * 4 * n + n


def test_simulate_stops_cleanly_on_sigterm(broker: str, unique: str) -> None:
    topic = f"metrics.sim{unique}"
    proc = simulate(broker, topic)
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("simulating")
    # A signal before the first tick would stop a run that never produced: wait until it has.
    read_records(broker, topic, count=1, timeout_s=30.0)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_simulate_with_an_executor_needs_a_signing_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PERFLOOP_ACTION_KEY", raising=False)
    assert main(["simulate", "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert "PERFLOOP_ACTION_KEY: not set" in err and "--no-executor" in err


def test_commands_reach_the_simulation_through_the_embedded_executor(
    config: PerfloopConfig,
) -> None:
    keys = Keyring.parse("simulator-kafka-secret-0123456789")
    scenario = Scenario.model_validate(
        {"fault": [{"service": "svc", "area": "memory", "cause": "cache", "at": 0.0}]}
    )
    stop = threading.Event()
    lines: list[str] = []
    result: list[Simulation] = []

    def target() -> None:
        result.append(
            run(config, scenario, stop, keys=keys, echo=lines.append, tick_s=0.2, rate=2.0)
        )

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not any(line.startswith("fault at") for line in lines):
            assert time.monotonic() < deadline, "waited 30s for the simulation to start"
            time.sleep(0.1)
        now = time.time()
        producer = KafkaProducer(bootstrap_servers=config.broker.bootstrap)
        for i in range(3):  # enough attempts that compress_data (p = 0.8) fixes the fault
            command = build_command(
                incident_id="inc-sim", service="svc", area="memory", cause="cache",
                remedy="compress_data", params={}, attempt=i + 1, issued_at=now, ttl_s=60.0,
                keys=keys,
            )  # fmt: skip
            producer.send(
                config.topics.names.actions, key=b"svc", value=command.model_dump_json().encode()
            )
        producer.flush(10)
        producer.close()
        while not any(line.startswith("applied") for line in lines):
            assert time.monotonic() < deadline, "waited 30s for the executor to apply a command"
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert lines[[line.startswith("applied") for line in lines].index(True)].startswith(
        "applied svc memory/cache/compress_data: "
    )
    assert result and result[0].outcomes
