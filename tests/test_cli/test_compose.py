"""docker-compose.yml runs the same commands, configuration and environment as the CLI."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import yaml

from perfloop.broker.local import kafka_version
from perfloop.cli import build_parser
from perfloop.schemas.config import env_overrides, load_config
from perfloop.simulator.scenario import scenario_file

ROOT = Path(__file__).resolve().parents[2]
KNOWN_ENV = {"PERFLOOP_BROKER", "PERFLOOP_CONFIG", "PERFLOOP_ACTION_KEY"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def subcommands() -> set[str]:
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(actions[0].choices)


def test_services_and_the_official_kafka_image(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"kafka", "worker", "executor", "simulator"}
    assert services["kafka"]["image"] == f"apache/kafka:{kafka_version()}"
    env = services["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, one node
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # like the local broker


@pytest.mark.parametrize("name", ["worker", "executor", "simulator"])
def test_perfloop_services_match_the_cli(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    command = service["command"]
    assert command[0] in subcommands(), f"{name}: {command[0]!r} is not a perfloop command"
    build_parser().parse_args(command)  # the arguments parse as the CLI's
    env = {k: str(v) for k, v in service["environment"].items()}
    for key in env:
        assert key in KNOWN_ENV or "__" in key, f"{name}: {key} is not read by perfloop"
    assert env["PERFLOOP_BROKER"] == "kafka:9092"
    kafka_env = compose["services"]["kafka"]["environment"]
    assert "PLAINTEXT://kafka:9092" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
    config_mount = next(v for v in service["volumes"] if v.endswith(env["PERFLOOP_CONFIG"] + ":ro"))
    host_file = ROOT / config_mount.split(":")[0].removeprefix("./")
    env_for_config = {k: v for k, v in env.items() if k != "PERFLOOP_CONFIG"}
    env_for_config["PERFLOOP_ACTION_KEY"] = "a-test-secret-0123456789"
    config = load_config(host_file, environ=env_for_config)
    assert config.broker.bootstrap == "kafka:9092"
    assert env_overrides(env_for_config).keys() <= set(config.model_dump())
    if name in ("worker", "executor"):
        state = config.worker.state_dir if name == "worker" else config.executor.state_dir
        assert any(v.endswith(":" + state) for v in service["volumes"]), f"{name}: {state}"
    if name == "simulator":
        scenario = command[command.index("--scenario") + 1]
        assert scenario_file(scenario).exists(), f"{scenario}: not a bundled scenario"
        assert config.executor.state_dir != load_config(host_file, environ={}).executor.state_dir


def test_one_configuration_for_everything(compose: dict[str, Any]) -> None:
    files = {
        next(v for v in compose["services"][n]["volumes"] if v.endswith(".toml:ro"))
        for n in ("worker", "executor", "simulator")
    }
    assert len(files) == 1
