"""The loop's check, past a result deadline, that no action result waits unread."""

from __future__ import annotations

import asyncio

import pytest

from actions.kafka_clients import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from schemas.config import PerfloopConfig, TopicNames
from streams.loop_stage import ResultsProgress

pytestmark = pytest.mark.broker


def test_results_are_behind_until_the_agent_or_its_group_has_read_them(
    config: PerfloopConfig, topics: TopicNames
) -> None:
    progress = ResultsProgress(config, lambda: [0, 1], recheck_s=0.0)
    assert asyncio.run(progress.behind()) is False  # empty partitions: nothing to read

    producer = KafkaProducer(bootstrap_servers=config.broker.bootstrap)
    for _ in range(3):  # kafka-python, as any executor would write them
        producer.send(topics.action_results, key=b"api", value=b"{}", partition=0).get(10)
    producer.close()
    assert asyncio.run(progress.behind()) is True

    progress.handled(0, 1)  # the record at offset 2 is still unread
    assert asyncio.run(progress.behind()) is True
    progress.handled(0, 2)
    assert asyncio.run(progress.behind()) is False

    progress.forget()  # a rebalance: what the agent read is no longer known
    assert asyncio.run(progress.behind()) is True
    group = KafkaConsumer(
        bootstrap_servers=config.broker.bootstrap,
        group_id=config.worker.app_id,
        enable_auto_commit=False,
    )
    group.commit({TopicPartition(topics.action_results, 0): OffsetAndMetadata(3, "", -1)})
    group.close()
    assert asyncio.run(progress.behind()) is False  # the worker's group committed past them

    producer = KafkaProducer(bootstrap_servers=config.broker.bootstrap)
    producer.send(topics.action_results, key=b"api", value=b"{}", partition=0).get(10)
    producer.close()
    assert asyncio.run(progress.behind()) is True
    elsewhere = ResultsProgress(config, lambda: [1, 2])  # partition 0 is another worker's
    assert asyncio.run(elsewhere.behind()) is False


def test_a_behind_answer_stands_until_a_result_is_handled(
    config: PerfloopConfig, topics: TopicNames
) -> None:
    producer = KafkaProducer(bootstrap_servers=config.broker.bootstrap)
    producer.send(topics.action_results, key=b"api", value=b"{}", partition=1).get(10)
    producer.close()
    progress = ResultsProgress(config, lambda: [1], recheck_s=600.0)
    assert asyncio.run(progress.behind()) is True
    group = KafkaConsumer(
        bootstrap_servers=config.broker.bootstrap,
        group_id=config.worker.app_id,
        enable_auto_commit=False,
    )
    group.commit({TopicPartition(topics.action_results, 1): OffsetAndMetadata(1, "", -1)})
    group.close()
    assert asyncio.run(progress.behind()) is True  # not asked again yet
    progress.handled(1, 0)
    assert asyncio.run(progress.behind()) is False
