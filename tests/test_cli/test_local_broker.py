"""``perfloop kafka up|status|down`` on ports of its own, twice in a row."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest

from perfloop.broker import local
from perfloop.broker.local import LocalKafka


def perfloop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perfloop.cli", *args],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def java_brokers(run_dir: Path) -> list[str]:
    """Command lines of live Kafka brokers that use ``run_dir``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (cmdline.parent / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if "kafka.Kafka" in args and str(run_dir) in args and state != "Z":
            found.append(args)
    return found


@pytest.mark.broker
def test_up_status_down_twice(tmp_path: Path) -> None:
    run_dir = tmp_path / "kafka"
    where = ["--port", "29192", "--controller-port", "29193", "--run-dir", str(run_dir)]
    try:
        up_down_round(where, run_dir, 1)
        # no time for a clean shutdown: down escalates to SIGKILL and says so
        up_down_round(where, run_dir, 2, down_args=("--timeout", "0"), clean=False)
    finally:
        LocalKafka(port=29192, controller_port=29193, run_dir=run_dir).down()


def up_down_round(
    where: list[str],
    run_dir: Path,
    round_: int,
    down_args: tuple[str, ...] = (),
    clean: bool = True,
) -> None:
    up = perfloop("kafka", "up", *where)
    assert up.returncode == 0, f"round {round_}: up failed:\n{up.stdout}{up.stderr}"
    assert "started" in up.stdout and "127.0.0.1:29192" in up.stdout
    again = perfloop("kafka", "up", *where)
    assert again.returncode == 0 and "already up" in again.stdout, again.stdout + again.stderr
    assert len(java_brokers(run_dir)) == 1, "a second up started a second broker"
    status = perfloop("kafka", "status", *where)
    assert status.returncode == 0 and "is up at 127.0.0.1:29192" in status.stdout
    down = perfloop("kafka", "down", *where, *down_args)
    assert down.returncode == 0, down.stdout + down.stderr
    if clean:
        assert down.stdout.strip() == "stopped"
    else:
        assert down.stdout.startswith("stopped: killed after 0 s without a clean shutdown")
    assert java_brokers(run_dir) == [], "down left the broker running"
    status = perfloop("kafka", "status", *where)
    assert status.returncode == 3 and "not running" in status.stdout


def test_up_refuses_a_port_held_by_another_process(tmp_path: Path) -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        broker = LocalKafka(port=port, controller_port=port + 1, run_dir=tmp_path)
        result = perfloop(
            "kafka", "up", "--port", str(port), "--controller-port", str(port + 1),
            "--run-dir", str(tmp_path),
        )  # fmt: skip
    assert result.returncode == 2
    assert f"127.0.0.1:{port}" in result.stderr and "already in use" in result.stderr
    assert not broker.pid_file.exists()


def test_ports_must_differ() -> None:
    with pytest.raises(ValueError, match="controller_port: 9092"):
        LocalKafka(port=9092, controller_port=9092)


def test_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # the storage tool reads "-t -..." as two options and refuses to format
    dashed, plain = b"\xf8" + bytes(15), bytes(16)
    assert base64.urlsafe_b64encode(dashed).startswith(b"-")
    draws = iter([dashed, plain])
    monkeypatch.setattr(local.os, "urandom", lambda n: next(draws))
    assert local.new_cluster_id() == "A" * 22
