"""Fixtures for the actions tests: the broker address, fresh topics, keys, a result reader."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from executor_support import SECRET, ResultReader

from perfloop.actions.kafka_clients import KafkaAdminClient, KafkaProducer, NewTopic
from perfloop.actions.signing import Keyring
from perfloop.schemas.config import PerfloopConfig


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> str:
    """The shared ``broker`` fixture when the suite has one, else ``PERFLOOP_BROKER``."""
    try:
        return str(request.getfixturevalue("broker"))
    except pytest.FixtureLookupError:
        return os.environ.get("PERFLOOP_BROKER", "127.0.0.1:9092")


@pytest.fixture
def keys() -> Keyring:
    return Keyring.parse(SECRET)


@pytest.fixture
def topics(kafka_bootstrap: str) -> Iterator[dict[str, str]]:
    """A fresh actions topic and results topic (one partition each), deleted afterwards."""
    suffix = uuid.uuid4().hex[:10]
    names = {"actions": f"test-actions-{suffix}", "action_results": f"test-results-{suffix}"}
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, request_timeout_ms=15_000)
    try:
        admin.create_topics([NewTopic(n, 1, 1) for n in names.values()], timeout_ms=15_000)
        yield names
    finally:
        try:
            admin.delete_topics(list(names.values()), timeout_ms=15_000)
        finally:
            admin.close()


@pytest.fixture
def make_config(
    kafka_bootstrap: str, topics: dict[str, str], tmp_path: Path
) -> Callable[..., PerfloopConfig]:
    """A configuration for one test: its topics, a fresh group, its own state directory."""

    def make(**executor: Any) -> PerfloopConfig:
        settings = {"group": f"test-executor-{uuid.uuid4().hex[:10]}",
                    "state_dir": str(tmp_path / "state"), "poll_timeout_ms": 100,
                    **executor}  # fmt: skip
        return PerfloopConfig.model_validate(
            {"broker": {"bootstrap": kafka_bootstrap}, "topics": {"names": topics},
             "executor": settings}
        )  # fmt: skip

    return make


@pytest.fixture
def send(kafka_bootstrap: str, topics: dict[str, str]) -> Iterator[Callable[[bytes, str], None]]:
    """Produce raw command bytes to the test's actions topic (acknowledged by the broker)."""
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")

    def send(value: bytes, key: str = "svc") -> None:
        producer.send(topics["actions"], key=key.encode(), value=value).get(timeout=15)

    yield send
    producer.close()


@pytest.fixture
def results(kafka_bootstrap: str, topics: dict[str, str]) -> Iterator[ResultReader]:
    reader = ResultReader(kafka_bootstrap, topics["action_results"])
    yield reader
    reader.consumer.close()
