"""``/healthz`` and ``/readyz`` of a real ``perfloop worker`` and ``perfloop executor`` on the
real broker, asked through ``perfloop health``; and the embedded executor's group check."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from worker_support import PERFLOOP, write_config

from perfloop.actions.executor import start_in_thread
from perfloop.actions.signing import Keyring
from perfloop.group_health import member_here
from perfloop.schemas.config import PerfloopConfig, TopicNames

pytestmark = pytest.mark.broker
SECRET = "health-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def health(*args: str) -> tuple[int, str]:
    proc = subprocess.run([PERFLOOP, "health", *args], capture_output=True, text=True, timeout=30)
    return proc.returncode, proc.stdout.strip()


def wait_health(
    proc: subprocess.Popen[bytes], log: Path, args: list[str], what: str, timeout_s: float
) -> str:
    """Poll ``perfloop health ARGS`` until it exits 0; the line it printed."""
    deadline = time.monotonic() + timeout_s
    line = ""
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited with {proc.returncode}: {log.read_text()[-3000:]}"
        code, line = health(*args)
        if code == 0:
            return line
        time.sleep(0.5)
    tail = log.read_text()[-3000:]
    raise AssertionError(f"waited {timeout_s:g}s for {what}; last: {line}\n{tail}")


def start(command: str, config: PerfloopConfig, tmp: Path, port: int) -> subprocess.Popen[bytes]:
    field = {"worker": "PERFLOOP_WORKER__HTTP_PORT", "executor": "PERFLOOP_EXECUTOR__HTTP_PORT"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERFLOOP_")}
    env.update({"PERFLOOP_ACTION_KEY": SECRET, field[command]: str(port)})
    path = write_config(config, tmp / f"{command}.toml")
    with (tmp / f"{command}.log").open("wb") as out:
        return subprocess.Popen(
            [PERFLOOP, command, "--config", str(path), "--loglevel", "info"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.mark.parametrize("command", ["worker", "executor"])
def test_a_running_process_is_alive_then_ready_then_gone(
    command: str, config: PerfloopConfig, tmp_path: Path, topics: TopicNames
) -> None:
    config = config.model_copy(
        update={"worker": config.worker.model_copy(update={"session_timeout_s": 6.0})}
    )
    port = free_port()
    proc = start(command, config, tmp_path, port)
    log = tmp_path / f"{command}.log"
    try:
        wait_health(proc, log, ["--port", str(port)], f"{command} /healthz", 60)
        line = wait_health(
            proc, log, ["--port", str(port), "--ready"], f"{command} to be assigned", 120
        )
        assert line.startswith("ok: /readyz 200: ready: ")
        assert "partitions" in line, line
    finally:
        stop(proc)
    code, line = health("--port", str(port), "--ready")
    assert code == 1 and line.startswith("failing: /readyz: no answer"), line


def test_an_embedded_executor_is_a_member_of_its_group(
    config: PerfloopConfig, topics: TopicNames
) -> None:
    thread, halt = start_in_thread(config, keys=Keyring.parse(SECRET))
    try:
        deadline = time.monotonic() + 60
        ok, line = member_here(config.broker.bootstrap, config.executor.group)
        while not ok and time.monotonic() < deadline:
            time.sleep(0.5)
            ok, line = member_here(config.broker.bootstrap, config.executor.group)
        assert ok, f"waited 60s for the executor to join {config.executor.group}: {line}"
        ok, line = member_here(config.broker.bootstrap, config.executor.group + "-none")
        assert not ok and "no member" in line
    finally:
        halt.set()
        thread.join(30)
