"""kill -9 of the worker while an incident is verifying, down for longer than the result
deadline, then a replay of the recorded metrics and action results into fresh topics: the
same incidents, commands and verdicts."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer
from kafka_helpers import read_records
from loop_support import (
    SECRET,
    LoopRun,
    TestService,
    TopicReader,
    Worker,
    loop_config,
    wait_loop_caught_up,
)

from perfloop.schemas.config import PerfloopConfig, TopicNames
from perfloop.schemas.topics import create_missing_topics, topic_catalog

pytestmark = pytest.mark.broker
# 30 windows of 1 s: the worker below stays down for 40 s, and on its restart it may read the
# windows of that time before an action result it had handled once; it must wait for it
DEADLINE = {"PERFLOOP_VERIFICATION__RESULT_DEADLINE_WINDOWS": "30"}


def dedupe(messages: list[dict[str, Any]], key: str | tuple[str, ...]) -> dict[Any, dict[str, Any]]:
    """Messages by id; a repeated id (at-least-once after a crash) must repeat the content."""
    keys = (key,) if isinstance(key, str) else key
    out: dict[Any, dict[str, Any]] = {}
    for m in messages:
        k = tuple(m[x] for x in keys)
        if k in out:
            assert _stable(out[k]) == _stable(m), f"{k} was sent twice with different content"
        out[k] = m
    return out


def _stable(message: dict[str, Any]) -> dict[str, Any]:
    # a command's signature and every other field are deterministic; nothing is excluded
    return message


def read_all(broker: str, topic: str) -> list[tuple[bytes | None, bytes]]:
    """Every record of a topic no longer written to, up to its end offsets."""
    return [(r.key, r.value) for r in read_records(broker, topic)]


def outcome(reader: TopicReader, names: TopicNames) -> dict[str, Any]:
    transitions = dedupe(reader.seen[names.incidents], ("incident_id", "seq"))
    commands = dedupe(reader.seen[names.actions], "action_id")
    verdicts = dedupe(reader.seen[names.verifications], "verification_id")
    return {
        "transitions": {k: (v["to_state"], v["reason"]) for k, v in sorted(transitions.items())},
        "commands": {
            k[0]: (v["remedy"], v["params"], v["issued_at"], v["signature"])
            for k, v in sorted(commands.items())
        },  # fmt: skip
        "verdicts": {
            k[0]: (v["verdict"], v["p_value"], v["effect_size"])
            for k, v in sorted(verdicts.items())
        },  # fmt: skip
    }


def test_kill9_while_verifying_then_replay_gives_the_same_loop(
    broker: str, config: PerfloopConfig, topics: TopicNames, tmp_path: Path
) -> None:
    producer = KafkaProducer(bootstrap_servers=broker, linger_ms=5)
    a = TestService(producer, topics.metrics, "svc-a", 40e9, {"reduce_ttl"})
    b = TestService(producer, topics.metrics, "svc-b", 40e9, {"increase_eviction"})
    run = LoopRun(broker, config, topics, tmp_path, [a, b], env=DEADLINE)
    try:
        run.wait_state("svc-a", "verifying")
        run.worker.kill9()  # mid-verification
        time.sleep(40)  # down for longer than the result deadline (metrics keep coming)
        run.worker.start()
        run.wait_state("svc-a", "resolved", timeout_s=120)
        run.wait_state("svc-b", "resolved", timeout_s=120)
        run.reader.wait(
            "the verdicts of svc-a and svc-b and both labels",
            lambda: len(run.reader.seen[topics.labels]) >= 2 and len(run.verdicts("svc-a")) >= 1
            and len(run.verdicts("svc-b")) >= 2, 30, run.worker.tail,
        )  # fmt: skip
        # A look for anything repeated after the restart. Committed offsets are no barrier
        # here: after a kill a redelivered record can stay unacknowledged, never committed.
        time.sleep(2)
        run.reader.poll()
    finally:
        run.close()
    first = outcome(run.reader, topics)
    assert [v[0] for k, v in first["verdicts"].items() if k.startswith("svc-a")] == ["resolved"]
    assert all(n == 1 for n in Counter(run.handler.calls).values()), (
        f"a command ran twice: {run.handler.calls}"
    )
    assert len(run.handler.calls) == len(first["commands"])  # every command ran, once

    # replay the recorded metrics and action results into fresh topics, with a fresh worker
    suffix = f".r{uuid.uuid4().hex[:8]}"
    names = TopicNames().with_suffix(suffix)
    replay_cfg = PerfloopConfig.model_validate({
        **config.model_dump(),
        "topics": {"names": names.model_dump(), "partitions": config.topics.partitions},
        "worker": {**config.worker.model_dump(), "app_id": f"replay{suffix}",
                   "state_dir": str(tmp_path / "replay-state")},
    })  # fmt: skip
    create_missing_topics(broker, topic_catalog(replay_cfg.topics))
    results = read_all(broker, topics.action_results)
    assert results, "the run recorded no action results"
    for key, value in results:  # results first: the loop holds them until it issues the command
        producer.send(names.action_results, key=key, value=value)
    for key, value in read_all(broker, topics.metrics):  # each partition in its order
        producer.send(names.metrics, key=key, value=value)
    producer.flush(30)
    worker = Worker(loop_config(replay_cfg, tmp_path / "replay.toml"), tmp_path / "replay.log",
                    {"PERFLOOP_ACTION_KEY": SECRET, **DEADLINE}).start()  # fmt: skip
    reader = TopicReader(broker, names.incidents, names.actions, names.verifications)
    try:

        def caught_up() -> bool:
            now = outcome(reader, names)
            return all(len(now[part]) >= len(first[part]) for part in first)

        reader.wait(
            f"the replay to send as many transitions, commands and verdicts as the run "
            f"({ {k: len(v) for k, v in first.items()} })",
            caught_up, 150, worker.tail,
        )  # fmt: skip
        wait_loop_caught_up(replay_cfg)  # the replay has nothing left to send
        reader.read_to_end()
    finally:
        worker.stop()
        reader.close()
        producer.close()
    second = outcome(reader, names)
    for part in ("commands", "verdicts", "transitions"):
        only_run = {k: v for k, v in first[part].items() if second[part].get(k) != v}
        only_replay = {k: v for k, v in second[part].items() if first[part].get(k) != v}
        assert not only_run and not only_replay, (
            f"{part} differ\nrun: {only_run}\nreplay: {only_replay}"
        )
