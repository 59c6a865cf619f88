"""A worker killed with ``kill -9`` while windows and breaches keep coming, and restarted:
once the restarted worker has recovered its tables, it processes every window and breach and
commits every partition up to the end.

The worker runs the closed loop, whose agent keeps a table and reads the windows and breaches
topics, as the diagnose agent reads the breaches. The test sends them straight to those topics
(each breach as detection sends it, with its windows), so each restart finds a backlog there,
more than an agent's queue holds, and the consumer has a large batch to deliver the moment
the stream partitions are resumed after recovery. Were it to deliver before the partitions
are at their committed offsets, the flow's resumption would throw events away that are never
read again: their partition would not be committed past them, and a breach lost that way
would get no diagnosis (see :mod:`perfloop.streams.kafka.recovery`).
"""

from __future__ import annotations

import random
import threading
import time
import tomllib
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka_helpers import read_records
from loop_support import SECRET, Worker, worker_toml
from worker_support import wait_committed

from perfloop.models.synthetic import synthetic_history
from perfloop.schemas.config import PerfloopConfig, TopicNames
from perfloop.schemas.messages import Breach, Diagnosis
from perfloop.streams.detect_stage import HISTORY_HEADER, DetectStage

pytestmark = pytest.mark.broker

KILLS = 3


def write_config(path: Path, config: PerfloopConfig) -> Path:
    """The test's worker configuration: a memory breach on every new service's first window."""
    detection = [
        "[diagnosis]", "min_labels = 0",
        "[detection.memory]", 'direction = "above"', "fire = 1e9", "clear = 5e8",
        "for_windows = 1",
    ]  # fmt: skip
    path.write_text(worker_toml(config) + "\n".join(detection) + "\n")
    return path


class WindowFeed:
    """Sends six windows of a new service, and the breaches detection finds in them, every
    ``period`` seconds, in a thread."""

    def __init__(self, config: PerfloopConfig, period: float = 0.1) -> None:
        self.producer = KafkaProducer(bootstrap_servers=config.broker.bootstrap, linger_ms=5)
        self.names, self.period = config.topics.names, period
        self.detection = DetectStage(config)
        self.services = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="window-feed", daemon=True)

    def _run(self) -> None:
        rng = random.Random(5)
        start = time.time() - 600
        while not self.stop.is_set():
            service = f"svc-{self.services}"
            key = service.encode()
            for w in synthetic_history("memory", "cache", rng, windows=6, service=service,
                                       start=start):  # fmt: skip
                for breach, history in self.detection.observe(0, w):
                    self.producer.send(self.names.breaches, key=key,
                                       value=breach.model_dump_json().encode(),
                                       headers=[(HISTORY_HEADER, history)])  # fmt: skip
                self.producer.send(self.names.windows, key=key,
                                   value=w.model_dump_json().encode())  # fmt: skip
            self.producer.flush(10)
            self.services += 1
            self.stop.wait(self.period)

    def __enter__(self) -> WindowFeed:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)
        self.producer.close()


def test_restart_after_kill9_with_a_backlog_processes_and_commits_every_event(
    broker: str, config: PerfloopConfig, topics: TopicNames, tmp_path: Path
) -> None:
    group = config.worker.app_id
    path = write_config(tmp_path / "perfloop.toml", config)
    worker = Worker(path, tmp_path / "worker.log", {"PERFLOOP_ACTION_KEY": SECRET})
    worker.start()
    try:
        with WindowFeed(PerfloopConfig.model_validate(tomllib.loads(path.read_text()))):
            wait_committed(
                broker, group, topics.windows, "the worker to process its first windows", 90,
                any_offset=True,
            )  # fmt: skip
            for kill in range(1, KILLS + 1):
                worker.kill9()
                time.sleep(2.0)  # a backlog for the restarted worker
                worker.start()
                time.sleep(2.0)  # windows keep coming while it recovers
                wait_committed(
                    broker, group, topics.windows,
                    f"the worker restarted after kill {kill} to process and commit every "
                    f"window sent so far", 90,
                )  # fmt: skip
        for topic in (topics.windows, topics.breaches):
            wait_committed(
                broker, group, topic, f"the worker to process and commit every record of {topic}"
            )
        # a breach is committed once its diagnosis is on the broker
        breaches = {Breach.model_validate_json(r.value).breach_id
                    for r in read_records(broker, topics.breaches)}  # fmt: skip
        diagnosed = {Diagnosis.model_validate_json(r.value).incident_id
                     for r in read_records(broker, topics.diagnoses)}  # fmt: skip
        assert breaches, "the windows caused no breach"
        missing = sorted(breaches - diagnosed)
        assert not missing, f"{len(missing)} breaches got no diagnosis: {missing[:5]}"
    finally:
        worker.stop()
