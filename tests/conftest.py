"""The broker every integration test talks to, and per-test topic isolation.

The session fixture ``broker`` returns a bootstrap address:

- ``PERFLOOP_BROKER`` when set (an existing cluster);
- a testcontainers Kafka when ``PERFLOOP_TEST_BROKER=testcontainers`` (needs Docker);
- otherwise the local broker from ``perfloop kafka up`` (started if needed, left running).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from perfloop.schemas.config import PerfloopConfig, TopicNames
from perfloop.schemas.topics import create_missing_topics, topic_catalog

# the workers and executors the tests start as processes serve no health endpoints unless a
# test asks for one: several run at once, and a fixed port would let only one of them start
os.environ.setdefault("PERFLOOP_WORKER__HTTP_PORT", "0")
os.environ.setdefault("PERFLOOP_EXECUTOR__HTTP_PORT", "0")


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    address = os.environ.get("PERFLOOP_BROKER")
    if address:
        yield address
        return
    if os.environ.get("PERFLOOP_TEST_BROKER") == "testcontainers":
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
        return
    from perfloop.broker.local import LocalKafka

    status = LocalKafka().up(timeout_s=120)
    yield status.bootstrap


@pytest.fixture
def unique() -> str:
    """A short suffix that makes topic and group names private to one test."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def topic_names(unique: str) -> TopicNames:
    return TopicNames().with_suffix(f".t{unique}")


@pytest.fixture
def config(broker: str, topic_names: TopicNames, unique: str, tmp_path: object) -> PerfloopConfig:
    """A configuration whose topics, groups and state folders belong to this test alone."""
    return PerfloopConfig.model_validate(
        {
            "broker": {"bootstrap": broker},
            "topics": {"names": topic_names.model_dump(), "partitions": 3},
            "worker": {"app_id": f"perfloop-{unique}", "state_dir": f"{tmp_path}/worker"},
            "executor": {"group": f"executor-{unique}", "state_dir": f"{tmp_path}/executor"},
        }
    )


@pytest.fixture
def topics(config: PerfloopConfig) -> TopicNames:
    """Create every catalog topic for this test's configuration and return the names."""
    create_missing_topics(config.broker.bootstrap, topic_catalog(config.topics))
    return config.topics.names
