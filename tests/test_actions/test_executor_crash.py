"""The executor as a real process (``python -m perfloop.actions.executor``): kill -9 mid-command,
restart, and graceful SIGTERM with a command in flight."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from action_commands import good, raw
from executor_support import PROBE, SECRET, ResultReader

from perfloop.actions.runner import INTERRUPTED
from perfloop.actions.signing import Keyring

pytestmark = pytest.mark.broker
REPO = Path(__file__).resolve().parents[2]


def wait_for_lines(path: Path, count: int, what: str, timeout_s: float = 30.0) -> list[list[str]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
            if len(lines) >= count:
                return lines
        time.sleep(0.05)
    raise AssertionError(f"waited {timeout_s:g}s for {what} ({count} lines in {path.name})")


class ExecutorProcess:
    """One ``python -m perfloop.actions.executor`` in its own session (so kill -9 takes its
    children)."""

    def __init__(self, config_file: Path, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PERFLOOP_")}
        env.update(PERFLOOP_CONFIG=str(config_file), PERFLOOP_ACTION_KEY=SECRET,
                   PERFLOOP_EXECUTOR__HTTP_PORT="0", PYTHONPATH=str(REPO))  # fmt: skip
        self.log_path = log
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "perfloop.actions.executor"], cwd=REPO, env=env,
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def wait_for_log(self, text: str, timeout_s: float = 30.0) -> None:
        """Wait until the executor's log (shared by every start in a test) contains ``text``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.log_path.read_text(errors="replace"):
                return
            assert self.proc.poll() is None, (
                f"the executor exited with {self.proc.returncode} before logging {text!r}"
            )
            time.sleep(0.05)
        raise AssertionError(f"waited {timeout_s:g}s for {text!r} in {self.log_path.name}")

    def kill_hard(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout_s: float = 30.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"waited {timeout_s:g}s for the executor to exit") from None

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def spawn(
    kafka_bootstrap: str, topics: dict[str, str], tmp_path: Path
) -> Iterator[Callable[[], ExecutorProcess]]:
    template = [sys.executable, PROBE, str(tmp_path / "argv.jsonl"), str(tmp_path / "hold"),
                "{action_id}", "--factor", "{param:factor}"]  # fmt: skip
    config = tmp_path / "perfloop.toml"
    config.write_text(
        f"[broker]\nbootstrap = {json.dumps(kafka_bootstrap)}\n"
        f"[topics.names]\nactions = {json.dumps(topics['actions'])}\n"
        f"action_results = {json.dumps(topics['action_results'])}\n"
        f"[executor]\ngroup = {json.dumps('test-executor-' + uuid.uuid4().hex[:10])}\n"
        f"state_dir = {json.dumps(str(tmp_path / 'state'))}\n"
        'default_handler = "command"\nhandler_timeout_s = 60\npoll_timeout_ms = 100\n'
        'group_instance_id = "executor-under-test"\n'
        f"[executor.commands]\ndefault = {json.dumps(template)}\n"
    )
    started: list[ExecutorProcess] = []

    def start() -> ExecutorProcess:
        started.append(ExecutorProcess(config, tmp_path / "executor.log"))
        return started[-1]

    yield start
    for process in started:
        process.cleanup()


def test_kill_9_mid_command_then_restart_neither_loses_nor_repeats_it(
    spawn: Callable[[], ExecutorProcess], keys: Keyring, send: Callable[[bytes, str], None],
    results: ResultReader, tmp_path: Path,
) -> None:  # fmt: skip
    argv_file, hold = tmp_path / "argv.jsonl", tmp_path / "hold"
    hold.touch()  # the handler will block until this file is gone
    first = good(keys, params={"factor": 0.25})
    send(raw(first), first.service)

    victim = spawn()
    wait_for_lines(argv_file, 1, "the handler of the first command to start")
    victim.kill_hard()  # between receiving and reporting
    hold.unlink()
    # the process is gone: whatever it reported is on the topic already
    assert results.on_topic() == 0, "nothing may be reported by a killed executor"

    second = good(keys)
    send(raw(second), second.service)
    survivor = spawn()
    results.wait_for(3)
    assert results.by_id() == {first.action_id: ["failed", "duplicate"],
                               second.action_id: ["applied"]}  # fmt: skip
    assert results.results[0]["detail"] == INTERRUPTED
    assert survivor.terminate() == 0
    lines = wait_for_lines(argv_file, 2, "both handlers' argv")
    assert lines == [[first.action_id, "--factor", "0.25"], [second.action_id, "--factor", "0.5"]]


def test_sigterm_finishes_the_command_in_flight_then_exits(
    spawn: Callable[[], ExecutorProcess], keys: Keyring, send: Callable[[bytes, str], None],
    results: ResultReader, tmp_path: Path,
) -> None:  # fmt: skip
    argv_file, hold = tmp_path / "argv.jsonl", tmp_path / "hold"
    hold.touch()
    cmd = good(keys)
    send(raw(cmd), cmd.service)
    executor = spawn()
    wait_for_lines(argv_file, 1, "the handler to start")
    executor.proc.send_signal(signal.SIGTERM)
    executor.wait_for_log("stopping after the command in flight")  # the signal was handled
    assert executor.proc.poll() is None, "the executor must wait for the command in flight"
    hold.unlink()
    assert executor.terminate() == 0
    results.wait_for(1)
    assert results.by_id() == {cmd.action_id: ["applied"]}

    # the offset was committed: nothing is redelivered. One partition is handled in order,
    # so a redelivered command would be reported before the result of the next one.
    restarted = spawn()
    after = good(keys)
    send(raw(after), after.service)
    results.wait_for(2)
    assert results.by_id() == {cmd.action_id: ["applied"], after.action_id: ["applied"]}
    assert restarted.terminate() == 0
