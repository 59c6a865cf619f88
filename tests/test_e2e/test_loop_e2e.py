"""The closed loop on the real broker: a test service breaches, perfloop diagnoses it, sends
signed commands that an executor applies to the service, verifies the windows after each
action, and resolves or escalates."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer
from kafka_helpers import read_records
from loop_support import (
    LOOP_TOML,
    SECRET,
    LoopRun,
    TestService,
    TopicReader,
    Worker,
    wait_loop_caught_up,
    worker_toml,
)

from perfloop.schemas.config import PerfloopConfig, TopicNames

pytestmark = pytest.mark.broker


def wait_verdicts(run: LoopRun, service: str, count: int, timeout_s: float = 30.0) -> None:
    run.reader.wait(
        f"{count} verdicts of {service}", lambda: len(run.verdicts(service)) >= count, timeout_s,
        lambda: f"verdicts: {run.verdicts(service)}\n{run.worker.tail()}",
    )  # fmt: skip


@pytest.fixture
def producer(broker: str) -> Any:
    p = KafkaProducer(bootstrap_servers=broker, linger_ms=5)
    yield p
    p.close()


def test_resolve_next_remedy_escalate_noise_and_no_data(
    broker: str, config: PerfloopConfig, topics: TopicNames, tmp_path: Path, producer: Any
) -> None:
    m = topics.metrics
    resolved = TestService(producer, m, "svc-resolved", 40e9, {"reduce_ttl"})
    second = TestService(producer, m, "svc-second", 40e9, {"increase_eviction"})
    stubborn = TestService(producer, m, "svc-stubborn", 40e9, set())
    noisy = TestService(producer, m, "svc-noisy", 40e9, {"reduce_ttl"}, fixed_level=39e9,
                        noise=0.4)  # fmt: skip
    silent = TestService(producer, m, "svc-silent", 40e9, set())
    silent.silenced_by = {"reduce_ttl"}
    run = LoopRun(broker, config, topics, tmp_path,
                  [resolved, second, stubborn, noisy, silent])  # fmt: skip
    try:
        # a memory incident caused by the cache, resolved by reduce_ttl
        run.wait_state("svc-resolved", "resolved")
        assert run.states("svc-resolved") == [
            "breached", "diagnosed", "acting", "verifying", "resolved"
        ]  # fmt: skip
        diag = run.transitions("svc-resolved")[1]
        assert diag["reason"].startswith("cause cache")
        acting = run.transitions("svc-resolved")[2]
        assert "cache/reduce_ttl" in acting["reason"]
        wait_verdicts(run, "svc-resolved", 1)  # on a topic of its own: it may come later
        assert run.verdicts("svc-resolved") == ["resolved"]

        # the first remedy does not help, the second does
        run.wait_state("svc-second", "resolved")
        wait_verdicts(run, "svc-second", 2)
        assert run.verdicts("svc-second") == ["unchanged", "resolved"]
        cmds = [c for c in run.reader.seen[topics.actions] if c["service"] == "svc-second"]
        assert [(c["remedy"], c["attempt"]) for c in cmds] == [
            ("reduce_ttl", 1), ("increase_eviction", 2)
        ]  # fmt: skip

        def labels_of_second() -> list[dict[str, Any]]:
            return [lb for lb in run.reader.seen[topics.labels] if lb["service"] == "svc-second"]

        run.reader.wait("the label of svc-second's resolution", lambda: bool(labels_of_second()),
                        30, lambda: str(run.reader.seen[topics.labels]))  # fmt: skip
        labels = labels_of_second()
        assert [(lb["cause"], lb["source"]) for lb in labels] == [("cache", "verification")]

        # no remedy fixes it: escalated at the attempt limit, with the whole history
        run.wait_state("svc-stubborn", "escalated", timeout_s=120)
        escalation = run.transitions("svc-stubborn")[-1]["detail"]["escalation"]
        assert [r["verdict"] for r in escalation["remedies"]] == ["unchanged"] * 3
        assert escalation["breach"]["service"] == "svc-stubborn"
        assert escalation["diagnoses"][0]["cause"] == "cache"

        # noise without a significant change is never resolved; no data is no_data
        run.reader.wait(
            "a verdict for svc-noisy and svc-silent",
            lambda: bool(run.verdicts("svc-noisy")) and bool(run.verdicts("svc-silent")),
            60, lambda: f"{run.states('svc-noisy')} {run.states('svc-silent')}",
        )  # fmt: skip
        # 40 % noise around a 2.5 % change: whatever the test says, never "resolved"
        assert run.verdicts("svc-noisy")[0] != "resolved"
        assert "resolved" not in run.states("svc-noisy")[:5]
        assert run.verdicts("svc-silent")[0] == "no_data"
        assert "resolved" not in run.states("svc-silent")

        # a malformed result from outside is dead-lettered and the loop goes on
        producer.send(topics.action_results, key=b"svc-resolved", value=b'{"action_id": 7}')
        producer.flush(10)
        dlq = TopicReader(broker, topics.dlq)
        try:

            def from_results() -> list[dict[str, Any]]:
                return [
                    x for x in dlq.seen[topics.dlq] if x["source_topic"] == topics.action_results
                ]

            dlq.wait("the malformed result in the dead-letter topic", lambda: bool(from_results()),
                     30, lambda: str(dlq.seen[topics.dlq])[-2000:])  # fmt: skip
        finally:
            dlq.close()
        assert "action_id" in from_results()[0]["reason"]

        # every command ran exactly once, and the bandit learned from the verdicts (it is
        # saved after the verdict is sent)
        assert all(n == 1 for n in Counter(run.handler.calls).values()), run.handler.calls
        bandit = Path(config.worker.state_dir) / "planner" / "bandit.json"
        deadline = time.monotonic() + 30
        while "increase_eviction" not in (bandit.read_text() if bandit.exists() else ""):
            assert time.monotonic() < deadline, (
                f"waited 30s for {bandit} to learn increase_eviction: "
                f"{bandit.read_text() if bandit.exists() else 'no file'}"
            )
            time.sleep(0.2)
    finally:
        run.close()


def test_the_window_archive_keeps_the_retained_span_on_the_broker(
    broker: str, config: PerfloopConfig, topics: TopicNames, tmp_path: Path, producer: Any
) -> None:
    """30 one-second windows of one service through a worker that keeps 8 window lengths:
    the loop-windows changelog ends holding the 9 newest windows, and every older one was
    written and then deleted (a tombstone); it and the service's book are on the partition of
    the service's windows."""
    toml = worker_toml(config) + LOOP_TOML.replace(
        "[verification]\n", "[verification]\nretained_windows = 8\n"
    )
    (tmp_path / "archive.toml").write_text(toml)
    base = float(int(time.time()) - 60)
    for i in range(32):  # windows 0-31; the point of window 31 closes window 29 (lateness 0.3)
        doc = {"service": "svc-archive", "metric": "memory_bytes", "value": 1e9, "ts": base + i}
        producer.send(topics.metrics, key=b"svc-archive", value=json.dumps(doc).encode())
    producer.flush(10)
    worker = Worker(tmp_path / "archive.toml", tmp_path / "archive.log",
                    {"PERFLOOP_ACTION_KEY": SECRET}).start()  # fmt: skip
    try:
        wait_loop_caught_up(config)
    finally:
        worker.stop()
    changelog = f"{config.worker.app_id}-loop-windows-changelog"
    last: dict[bytes, bytes | None] = {}
    records = read_records(broker, changelog)
    for record in records:
        last[record.key] = record.value
    # the loop handles its events in batches: its table writes still name their partition,
    # the one of the service's windows
    books = read_records(broker, f"{config.worker.app_id}-loop-state-changelog")
    windows = {r.partition for r in read_records(broker, topics.windows)}
    assert len(windows) == 1 and {r.partition for r in records + books} == windows
    starts = {key: float(key.decode().split("\x1f")[1]) for key in last}
    kept = sorted(starts[k] for k, v in last.items() if v is not None)
    deleted = sorted(starts[k] for k, v in last.items() if v is None)
    assert kept == [base + i for i in range(21, 30)], worker.tail()
    assert deleted == [base + i for i in range(21)]
