"""docker-compose.yml, as Docker Compose v2 reads it: the services run the CLI's commands with
the configuration they are meant to, their state is on named volumes, every service has a
healthcheck, the signing key is a secret, and whatever the profiles, one executor group
applies the commands.

The file is resolved by the real ``docker compose`` (no engine needed for ``config``); CI
installs it (``.ci/run``), and a machine without it fails here rather than skipping.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from perfloop.actions.signing import Keyring
from perfloop.broker.local import kafka_version
from perfloop.cli import build_parser
from perfloop.schemas.config import PerfloopConfig, env_overrides, load_config
from perfloop.simulator.scenario import scenario_file

ROOT = Path(__file__).resolve().parents[2]
KNOWN_ENV = {"PERFLOOP_BROKER", "PERFLOOP_CONFIG", "PERFLOOP_ACTION_KEY_FILE"}
PERFLOOP_SERVICES = ("worker", "executor", "simulator")
SECRET = "compose-test-secret-0123456789"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the compose project with the secret file it names (never in the repository)."""
    docker = shutil.which("docker")
    assert docker, "docker (the CLI) is not installed; .ci/run installs it"
    version = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
    major = re.search(r"version v?(\d+)\.", version.stdout)
    assert version.returncode == 0 and major and int(major.group(1)) >= 2, (
        "no Docker Compose v2 plugin (docker compose version: "
        f"{version.stdout.strip() or version.stderr.strip()}); .ci/run installs it"
    )
    folder = tmp_path_factory.mktemp("compose")
    for name in ("docker-compose.yml", "Dockerfile", "deploy/perfloop.toml"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, folder / name)
    (folder / "deploy/secrets").mkdir()
    (folder / "deploy/secrets/action-key").write_text(SECRET + "\n")
    return folder


def compose(project: Path, *args: str, profiles: tuple[str, ...] = ()) -> str:
    argv = ["docker", "compose", "-f", str(project / "docker-compose.yml")]
    argv += [arg for p in profiles for arg in ("--profile", p)]
    proc = subprocess.run([*argv, *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{' '.join(argv[1:] + list(args))}: {proc.stderr}"
    return proc.stdout


def model(project: Path, profiles: tuple[str, ...] = ()) -> dict[str, Any]:
    """The resolved compose model with these profiles active (only their services)."""
    data: dict[str, Any] = json.loads(
        compose(project, "config", "--format", "json", profiles=profiles)
    )
    return data


@pytest.fixture(scope="module")
def full(project: Path) -> dict[str, Any]:
    """The model with every profile active."""
    return model(project, tuple(compose(project, "config", "--profiles").split()))


def service_config(project: Path, service: dict[str, Any]) -> PerfloopConfig:
    """The configuration a perfloop service runs with: the mounted file and its environment."""
    env = {k: str(v) for k, v in service["environment"].items() if k != "PERFLOOP_CONFIG"}
    mount = next(
        v for v in service["volumes"] if v["target"] == service["environment"]["PERFLOOP_CONFIG"]
    )
    assert mount["read_only"] and Path(mount["source"]) == project / "deploy/perfloop.toml"
    return load_config(mount["source"], environ=env)


def subcommands() -> set[str]:
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(actions[0].choices)


def test_the_file_validates_with_every_profile(project: Path) -> None:
    for profiles in ((), ("executor",)):
        compose(project, "config", "--quiet", profiles=profiles)


def test_services_and_the_official_kafka_image(full: dict[str, Any]) -> None:
    services = full["services"]
    assert set(services) == {"kafka", "worker", "executor", "simulator"}
    assert services["kafka"]["image"] == f"apache/kafka:{kafka_version()}"
    env = services["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, one node
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # like the local broker
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]


def test_state_lives_on_named_volumes(project: Path, full: dict[str, Any]) -> None:
    services = full["services"]

    def volume_at(name: str, target: str) -> str:
        mounts = [v for v in services[name]["volumes"] if v["target"] == target]
        assert mounts and mounts[0]["type"] == "volume", f"{name}: no named volume at {target}"
        assert mounts[0]["source"] in full["volumes"]
        return str(mounts[0]["source"])

    kafka_dir = services["kafka"]["environment"]["KAFKA_LOG_DIRS"]
    sources = {"kafka": volume_at("kafka", kafka_dir)}  # incidents, labels: every topic
    for name in PERFLOOP_SERVICES:
        config = service_config(project, services[name])
        state = config.worker.state_dir if name == "worker" else config.executor.state_dir
        sources[name] = volume_at(name, state)
    assert len(set(sources.values())) == 4, f"one volume each: {sources}"
    assert set(full["volumes"]) == set(sources.values())


def test_every_service_has_a_healthcheck_that_asks_the_right_thing(
    project: Path, full: dict[str, Any]
) -> None:
    services = full["services"]
    for name, service in services.items():
        test = service.get("healthcheck", {}).get("test")
        assert (
            test and test[0] in ("CMD", "CMD-SHELL") and not service["healthcheck"].get("disable")
        ), f"{name}: no healthcheck"
    assert "kafka-topics.sh" in services["kafka"]["healthcheck"]["test"][1]
    for name in PERFLOOP_SERVICES:
        test = services[name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "perfloop", "health"], f"{name}: {test}"
        args = build_parser().parse_args(test[2:])
        config = service_config(project, services[name])
        if name == "simulator":  # its executor is embedded: it serves no HTTP
            assert args.group == config.executor.group
        else:
            port = config.worker.http_port if name == "worker" else config.executor.http_port
            assert (args.port, args.ready, args.group) == (port, True, None), f"{name}: {test}"
            assert port != 0


def test_the_signing_key_is_a_secret_file(project: Path, full: dict[str, Any]) -> None:
    secret = full["secrets"]["action_key"]
    assert Path(secret["file"]) == project / "deploy/secrets/action-key"
    for name in PERFLOOP_SERVICES:
        service = full["services"][name]
        env = service["environment"]
        assert "PERFLOOP_ACTION_KEY" not in env, f"{name}: the key is in the environment"
        mounted = {s["source"]: s["target"] for s in service["secrets"]}
        assert mounted == {"action_key": env["PERFLOOP_ACTION_KEY_FILE"]}, name
        # what perfloop reads there is the secret's file: a valid key
        keys = Keyring.from_env({"PERFLOOP_ACTION_KEY_FILE": secret["file"]})
        assert keys.secrets == {"default": SECRET.encode()}


@pytest.mark.parametrize("name", PERFLOOP_SERVICES)
def test_perfloop_services_match_the_cli(project: Path, full: dict[str, Any], name: str) -> None:
    service = full["services"][name]
    command = service["command"]
    assert command[0] in subcommands(), f"{name}: {command[0]!r} is not a perfloop command"
    build_parser().parse_args(command)  # the arguments parse as the CLI's
    env = {k: str(v) for k, v in service["environment"].items()}
    for key in env:
        assert key in KNOWN_ENV or "__" in key, f"{name}: {key} is not read by perfloop"
    assert env["PERFLOOP_BROKER"] == "kafka:9092"
    config = service_config(project, service)
    assert config.broker.bootstrap == "kafka:9092"
    assert env_overrides(env).keys() <= set(config.model_dump())
    assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
    if name == "simulator":
        scenario = command[command.index("--scenario") + 1]
        assert scenario_file(scenario).exists(), f"{scenario}: not a bundled scenario"


def executor_groups(project: Path, active: dict[str, Any]) -> dict[str, str]:
    """The services of ``active`` that apply commands, and the consumer group of each."""
    groups = {}
    for name, service in active.items():
        command = service.get("command") or []
        if not command or command[0] not in ("executor", "simulate"):
            continue
        if command[0] == "simulate" and not build_parser().parse_args(command).executor:
            continue
        groups[name] = service_config(project, service).executor.group
    return groups


def test_one_executor_group_applies_commands_whatever_the_profiles(project: Path) -> None:
    profiles = compose(project, "config", "--profiles").split()
    assert profiles == ["executor"]
    seen = {}
    for count in range(len(profiles) + 1):
        for chosen in itertools.combinations(profiles, count):
            groups = executor_groups(project, model(project, chosen)["services"])
            assert len(set(groups.values())) == 1, f"profiles {chosen}: groups {groups}"
            seen[chosen] = set(groups)
    assert seen == {(): {"simulator"}, ("executor",): {"simulator", "executor"}}
