"""The executor on the real broker, in a thread: apply once, refuse bad commands, dedupe."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from action_commands import good, raw, resigned, tampered
from executor_support import PROBE, SECRET, Hook, ResultReader

from perfloop.actions.executor import start_in_thread
from perfloop.actions.handlers import RecordingHandler
from perfloop.actions.signing import Keyring
from perfloop.schemas.config import PerfloopConfig

pytestmark = pytest.mark.broker
Send = Callable[[bytes, str], None]


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.close()


def run_until(
    config: PerfloopConfig,
    keys: Keyring,
    check: Callable[[], None],
    handlers: dict[str, RecordingHandler] | None = None,
) -> None:
    """Run an executor in a thread while ``check`` waits; stop it (bounded) afterwards."""
    thread, stop = start_in_thread(config, keys=keys, handlers=handlers)  # type: ignore[arg-type]
    try:
        check()
    finally:
        stop.set()
        thread.join(timeout=20)
        assert not thread.is_alive(), "waited 20s for the executor thread to stop"


def test_log_and_webhook_apply_a_command_exactly_once_even_when_replayed(
    make_config: Callable[..., PerfloopConfig], keys: Keyring, send: Send,
    results: ResultReader, hook: Hook,
) -> None:  # fmt: skip
    config = make_config(handlers={"latency": "webhook"}, webhook={"url": hook.url})
    logged = good(keys)
    posted = good(keys, area="latency", cause="network", remedy="use_compression")
    for cmd in (logged, logged, posted, posted):
        send(raw(cmd), cmd.service)

    run_until(config, keys, lambda: results.wait_for(4))
    assert results.by_id() == {logged.action_id: ["applied", "duplicate"],
                               posted.action_id: ["applied", "duplicate"]}  # fmt: skip
    assert set(results.keys) == {b"api"}  # keyed by service
    assert [r["handler"] for r in results.results] == ["log", "log", "webhook", "webhook"]
    assert [c["action"] for c in hook.calls] == [posted.action_id]
    log_file = Path(config.executor.state_dir) / "actions.jsonl"
    assert [json.loads(x)["action_id"] for x in log_file.read_text().splitlines()] == [
        logged.action_id
    ]

    # a restarted executor replaying the whole topic (new group) runs nothing again
    replay = config.model_copy(
        update={"executor": config.executor.model_copy(update={"group": config.executor.group
                                                               + "-replay"})}
    )  # fmt: skip
    run_until(replay, keys, lambda: results.wait_for(8))
    assert results.by_id()[logged.action_id] == ["applied", "duplicate", "duplicate", "duplicate"]
    assert len(hook.calls) == 1
    assert len(log_file.read_text().splitlines()) == 1


def test_bad_commands_are_refused_and_never_run(
    make_config: Callable[..., PerfloopConfig], keys: Keyring, send: Send,
    results: ResultReader,
) -> None:  # fmt: skip
    recorder = RecordingHandler()
    config = make_config(default_handler="recording")
    bad = {
        "tampered": tampered(good(keys), params={"factor": 0.99}),
        "wrong key": raw(good(Keyring.parse("default:some-other-secret-0123456"))),
        "expired": raw(good(keys, issued_at=time.time() - 900, ttl_s=300)),
        "unknown remedy": resigned(good(keys), keys, remedy="drop_database"),
        "out of bounds": resigned(good(keys), keys, params={"factor": 7.5}),
        "not json": b"rm -rf /",
    }
    for value in bad.values():
        send(value, "api")
    fine = good(keys, dry_run=True)
    send(raw(fine), "api")

    run_until(config, keys, lambda: results.wait_for(len(bad) + 1), {"recording": recorder})
    statuses = [(r["status"], r["detail"]) for r in results.results]
    assert [s for s, _ in statuses] == ["rejected", "rejected", "expired", "rejected",
                                        "rejected", "rejected", "applied"]  # fmt: skip
    assert "bad signature" in statuses[0][1] and "bad signature" in statuses[1][1]
    assert "drop_database" in statuses[3][1] and "factor: 7.5" in statuses[4][1]
    assert statuses[6] == ("applied", "dry-run")
    assert recorder.applied == []  # the dry run went to the log handler only


def test_command_handler_gets_params_as_argv_items_and_hostile_values_are_refused(
    make_config: Callable[..., PerfloopConfig], keys: Keyring, send: Send,
    results: ResultReader, tmp_path: Path,
) -> None:  # fmt: skip
    out = tmp_path / "argv.jsonl"
    template = [sys.executable, PROBE, str(out), str(tmp_path / "no-hold"), "{action_id}",
                "--dtype", "{param:dtype}"]  # fmt: skip
    config = make_config(default_handler="command", commands={"default": template})
    ok = good(keys, cause="model", remedy="reduce_precision", params={"dtype": "int8"})
    hostile = resigned(good(keys, cause="model", remedy="reduce_precision"), keys,
                       params={"dtype": "; rm -rf /"})  # fmt: skip
    send(hostile, "api")
    send(raw(ok), "api")

    run_until(config, keys, lambda: results.wait_for(2))
    assert [r["status"] for r in results.results] == ["rejected", "applied"]
    assert "'; rm -rf /' is not one of" in results.results[0]["detail"]
    assert [json.loads(x) for x in out.read_text().splitlines()] == [
        [ok.action_id, "--dtype", "int8"]
    ]


def test_the_secret_fixture_matches_the_keys(keys: Keyring) -> None:
    assert keys.secrets["default"] == SECRET.encode()
