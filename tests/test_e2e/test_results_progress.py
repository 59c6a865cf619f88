"""The loop's check, past a result deadline, that no action result waits unread."""

from __future__ import annotations

import asyncio

import pytest

from perfloop.actions.kafka_clients import (
    KafkaConsumer,
    KafkaProducer,
    OffsetAndMetadata,
    TopicPartition,
)
from perfloop.schemas.config import PerfloopConfig, TopicNames
from perfloop.streams.kafka.loop_stage import ResultsProgress

pytestmark = pytest.mark.broker


def write_results(config: PerfloopConfig, partition: int, count: int) -> None:
    """``count`` records on ``partition`` of action-results, as any executor would write them."""
    producer = KafkaProducer(bootstrap_servers=config.broker.bootstrap)
    for _ in range(count):
        topic = config.topics.names.action_results
        producer.send(topic, key=b"api", value=b"{}", partition=partition).get(10)
    producer.close()


def commit_group(config: PerfloopConfig, partition: int, offset: int) -> None:
    """The worker's group commits ``offset`` on ``partition`` of action-results."""
    group = KafkaConsumer(
        bootstrap_servers=config.broker.bootstrap,
        group_id=config.worker.app_id,
        enable_auto_commit=False,
    )
    tp = TopicPartition(config.topics.names.action_results, partition)
    group.commit({tp: OffsetAndMetadata(offset, "", -1)})
    group.close()


def test_results_are_behind_until_the_agent_or_its_group_has_read_them(
    config: PerfloopConfig, topics: TopicNames
) -> None:
    progress = ResultsProgress(config, lambda: [0, 1], recheck_s=0.0)
    assert asyncio.run(progress.behind()) is False  # empty partitions: nothing to read

    write_results(config, partition=0, count=3)
    assert asyncio.run(progress.behind()) is True

    progress.handled(0, 1)  # the record at offset 2 is still unread
    assert asyncio.run(progress.behind()) is True
    progress.handled(0, 2)
    assert asyncio.run(progress.behind()) is False

    progress.forget()  # a rebalance: what the agent read is no longer known
    assert asyncio.run(progress.behind()) is True
    commit_group(config, partition=0, offset=3)
    assert asyncio.run(progress.behind()) is False  # the worker's group committed past them

    write_results(config, partition=0, count=1)
    assert asyncio.run(progress.behind()) is True
    elsewhere = ResultsProgress(config, lambda: [1, 2])  # partition 0 is another worker's
    assert asyncio.run(elsewhere.behind()) is False


def test_a_behind_answer_stands_until_a_result_is_handled(
    config: PerfloopConfig, topics: TopicNames
) -> None:
    write_results(config, partition=1, count=1)
    progress = ResultsProgress(config, lambda: [1], recheck_s=600.0)
    assert asyncio.run(progress.behind()) is True
    commit_group(config, partition=1, offset=1)
    assert asyncio.run(progress.behind()) is True  # not asked again yet
    progress.handled(1, 0)
    assert asyncio.run(progress.behind()) is False
