"""Helpers of the loop tests: a worker child process with the action key, a test service
whose behaviour remedies change, and a reader that follows topics from the start.

Every wait is bounded and its failure message says what it waited for.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka_helpers import at_ends, partitions_of
from worker_support import wait_committed

from perfloop.actions.executor import start_in_thread
from perfloop.actions.signing import Keyring
from perfloop.schemas.config import PerfloopConfig, TopicNames
from perfloop.streams.kafka.ingest import ingest_group

SECRET = "loop-e2e-secret-0123456789abcdef"


class Worker:
    """``perfloop worker`` as a child process that can be killed like a crash."""

    def __init__(self, config_file: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.config_file, self.log = config_file, log
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        env = {**os.environ, "PERFLOOP_CONFIG": str(self.config_file), **self.env}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "perfloop.cli", "worker", "--loglevel", "warning"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        return self

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


class TopicReader:
    """Follows topics from the beginning and keeps every JSON value, by topic."""

    def __init__(self, broker: str, *topics: str) -> None:
        self.consumer = KafkaConsumer(
            *topics,
            bootstrap_servers=broker,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=300,
        )
        self.seen: dict[str, list[dict[str, Any]]] = {t: [] for t in topics}

    def poll(self) -> None:
        for records in self.consumer.poll(timeout_ms=300).values():
            for r in records:
                self.seen[r.topic].append(json.loads(r.value))

    def wait(
        self, what: str, done: Callable[[], bool], timeout_s: float, context: Callable[[], str]
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.poll()
            if done():
                return
        raise AssertionError(f"waited {timeout_s:g}s for {what}\n{context()}")

    def read_to_end(self, timeout_s: float = 30.0) -> None:
        """Read on up to the end offsets every topic has now."""
        deadline = time.monotonic() + timeout_s
        parts = [tp for topic in self.seen for tp in partitions_of(self.consumer, topic, timeout_s)]
        ends = self.consumer.end_offsets(parts)
        while True:
            self.poll()
            if at_ends(self.consumer, ends):
                return
            if time.monotonic() > deadline:
                behind = {f"{tp.topic}[{tp.partition}]": ends[tp] for tp in parts}
                raise AssertionError(
                    f"waited {timeout_s:g}s to read up to the end offsets {behind}"
                )

    def close(self) -> None:
        self.consumer.close()


def wait_loop_caught_up(config: PerfloopConfig, timeout_s: float = 60.0) -> None:
    """Wait until the worker has handled every record produced so far, stage by stage in
    pipeline order: metrics give windows, windows give breaches, breaches give diagnoses, and
    the loop reads windows, breaches, diagnoses and action results.

    Each group commits a record only once what it caused is on the broker, so when all are
    committed up to the end offsets, the incidents, commands, verdicts and labels are out."""
    names, bootstrap, group = config.topics.names, config.broker.bootstrap, config.worker.app_id
    wait_committed(
        bootstrap, ingest_group(config), names.metrics, "the ingest to handle every metric",
        timeout_s,
    )  # fmt: skip
    for role in ("windows", "breaches", "diagnoses", "action_results"):
        wait_committed(
            bootstrap, group, getattr(names, role), f"the worker to handle every record of {role}",
            timeout_s,
        )  # fmt: skip


class TestService:
    """A service that publishes memory metrics at event time = now, until stopped.

    Its memory in use is ``level``; the cache holds most of it, so the rule prior names
    the cache. ``fixed_by`` remedies bring the level down (the executor handler calls
    :meth:`apply`); ``send_memory=False`` stops the trigger metric (a post window with no
    data)."""

    __test__ = False

    def __init__(
        self,
        producer: KafkaProducer,
        topic: str,
        service: str,
        level: float,
        fixed_by: set[str],
        fixed_level: float = 18e9,
        noise: float = 0.02,
    ) -> None:
        self.producer, self.topic, self.service = producer, topic, service
        self.level, self.fixed_by, self.fixed_level, self.noise = (
            level,
            fixed_by,
            fixed_level,
            noise,
        )
        self.send_memory = True
        self.silenced_by: set[str] = set()
        self.applied: list[str] = []
        self.sent: list[tuple[bytes, bytes]] = []
        self._rng = __import__("random").Random(service)

    def apply(self, remedy: str, action_id: str) -> str:
        self.applied.append(action_id)
        if remedy in self.silenced_by:
            self.send_memory = False
        if remedy in self.fixed_by:
            self.level = self.fixed_level
            return f"{self.service}: {remedy} fixed it"
        return f"{self.service}: {remedy} changed nothing"

    def tick(self, now: float, points: int = 4) -> None:
        ts = [now - 0.05 * (points - 1 - i) for i in range(points)]
        values = {
            "memory_cache_bytes": 0.7,
            "memory_model_bytes": 0.15,
            "memory_workers_bytes": 0.1,
        }
        batches = []
        if self.send_memory:
            batches.append(
                (
                    "memory_bytes",
                    [self.level * (1 + self.noise * self._rng.gauss(0, 1)) for _ in ts],
                )
            )
        for metric, share in values.items():
            batches.append((metric, [self.level * share for _ in ts]))
        for metric, vals in batches:
            doc = {"service": self.service, "metric": metric, "ts": ts, "values": vals}
            value = json.dumps(doc).encode()
            self.sent.append((self.service.encode(), value))
            self.producer.send(self.topic, key=self.service.encode(), value=value)


def run_services(
    services: list[TestService], stop: threading.Event, period: float = 0.2
) -> threading.Thread:
    """Tick every service each ``period`` seconds of wall time in a thread."""

    def loop() -> None:
        while not stop.is_set():
            now = time.time()
            for s in services:
                s.tick(now)
            services[0].producer.flush(10)
            stop.wait(period)

    thread = threading.Thread(target=loop, name="test-services", daemon=True)
    thread.start()
    return thread


class ServiceHandler:
    """An executor handler that applies a command to the test service it names."""

    name = "test-service"

    def __init__(self, services: list[TestService]) -> None:
        self.services = {s.service: s for s in services}
        self.calls: list[str] = []

    def apply(self, command: Any) -> str:
        self.calls.append(command.action_id)
        if command.dry_run:
            return "dry run: nothing changed"
        return self.services[command.service].apply(command.remedy, command.action_id)


LOOP_TOML = """
[windows]
length_s = 1.0
lateness_s = 0.3
idle_timeout_s = 300
[detection.memory]
direction = "above"
fire = 33.6e9
clear = 32e9
for_windows = 2
clear_windows = 2
[verification]
settle_windows = 1
post_windows = 3
min_observations = 8
# windows are 1 s here, not 10: keep the result deadline at wall-clock scale (5 minutes), so
# that a worker restart on a slow machine (whose backlog of windows the loop may read before
# the result it missed) does not pass it
result_deadline_windows = 300
[planner]
cooldown_s = 0
max_attempts = 3
"""


def worker_toml(config: PerfloopConfig) -> str:
    """The TOML of a test worker's broker, topics and worker sections for ``config`` (quick
    to notice a killed member: 6 s sessions)."""
    names = config.topics.names.model_dump()
    head = [
        "[broker]", f'bootstrap = "{config.broker.bootstrap}"',
        "[topics]", f"partitions = {config.topics.partitions}", "[topics.names]",
        *(f'{k} = "{v}"' for k, v in names.items()),
        "[worker]", f'app_id = "{config.worker.app_id}"',
        f'state_dir = "{config.worker.state_dir}"', "session_timeout_s = 6",
        "heartbeat_interval_s = 1",
    ]  # fmt: skip
    return "\n".join(head) + "\n"


def loop_config(config: PerfloopConfig, path: Path) -> Path:
    path.write_text(worker_toml(config) + LOOP_TOML)
    return path


class LoopRun:
    """A worker, an executor with the test-service handler, and the services' producer."""

    def __init__(
        self,
        broker: str,
        config: PerfloopConfig,
        topics: TopicNames,
        tmp: Path,
        services: list[TestService],
        env: dict[str, str] | None = None,
    ) -> None:
        self.topics = topics
        self.worker = Worker(
            loop_config(config, tmp / "loop.toml"), tmp / "worker.log",
            {"PERFLOOP_ACTION_KEY": SECRET, **(env or {})},
        ).start()  # fmt: skip
        self.handler = ServiceHandler(services)
        exec_cfg = config.model_copy(
            update={
                "executor": config.executor.model_copy(
                    update={"default_handler": self.handler.name}
                )
            }
        )
        self.exec_thread, self.exec_stop = start_in_thread(
            exec_cfg, keys=Keyring.parse(SECRET), handlers={self.handler.name: self.handler}
        )
        self.services = services
        self.stop = threading.Event()
        self.reader = TopicReader(
            broker, topics.incidents, topics.actions, topics.verifications, topics.labels,
            topics.action_results,
        )  # fmt: skip
        self.thread = run_services(services, self.stop)

    def transitions(self, service: str) -> list[dict[str, Any]]:
        return [t for t in self.reader.seen[self.topics.incidents] if t["service"] == service]

    def states(self, service: str) -> list[str]:
        return [t["to_state"] for t in self.transitions(service)]

    def verdicts(self, service: str) -> list[str]:
        seen = self.reader.seen[self.topics.verifications]
        return [v["verdict"] for v in seen if v["service"] == service]

    def wait_state(self, service: str, state: str, timeout_s: float = 90.0) -> None:
        self.reader.wait(
            f"{service} to reach {state}", lambda: state in self.states(service), timeout_s,
            lambda: f"states: {self.states(service)}\n{self.worker.tail()}",
        )  # fmt: skip

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.exec_stop.set()
        self.exec_thread.join(30)
        self.worker.stop()
        self.reader.close()
