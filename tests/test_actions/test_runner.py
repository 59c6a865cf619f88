"""The executor's per-command logic without Kafka: checks, dedupe, crash recovery."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from action_commands import good, raw, resigned, tampered

from perfloop.actions.handlers import RecordingHandler
from perfloop.actions.runner import INTERRUPTED, CommandRunner, HandlerTimeout, run_bounded
from perfloop.actions.signing import Keyring
from perfloop.actions.store import ActionStore
from perfloop.schemas.config import ExecutorConfig

KEYS = Keyring.parse("k1:unit-secret-0123456789")


def runner(tmp_path: Path, recorder: RecordingHandler, **settings: object) -> CommandRunner:
    config = ExecutorConfig.model_validate(
        {"state_dir": str(tmp_path), "default_handler": "recording", **settings}
    )
    handlers = {"recording": recorder, "log": RecordingHandler("log")}
    return CommandRunner(config, KEYS, handlers, ActionStore(tmp_path), "unit-executor")  # type: ignore[dict-item]


def test_a_good_command_is_applied_once_then_reported_duplicate(tmp_path: Path) -> None:
    recorder = RecordingHandler()
    r = runner(tmp_path, recorder)
    cmd = good(KEYS)
    first = r.process(raw(cmd))
    assert (first.status, first.detail, first.handler) == ("applied", "recorded", "recording")
    assert (first.action_id, first.service, first.incident_id) == (
        cmd.action_id, "api", cmd.incident_id,
    )  # fmt: skip
    r.reported(first)
    second = r.process(raw(cmd))
    assert second.status == "duplicate" and "already applied" in second.detail
    assert len(recorder.applied) == 1


def test_an_unreported_result_is_reported_again_not_rerun(tmp_path: Path) -> None:
    recorder = RecordingHandler()
    r = runner(tmp_path, recorder)
    cmd = good(KEYS)
    assert r.process(raw(cmd)).status == "applied"  # crash before the result was produced
    again = r.process(raw(cmd))
    assert again.status == "applied" and len(recorder.applied) == 1


@pytest.mark.parametrize(
    ("make", "status", "detail"),
    [
        (lambda: tampered(good(KEYS), params={"factor": 0.9}), "rejected", "bad signature"),
        (lambda: raw(good(Keyring.parse("k1:wrong-secret-0123456789"))), "rejected",
         "bad signature"),
        (lambda: raw(good(Keyring.parse("k9:other-secret-0123456789"))), "rejected",
         "unknown key id 'k9'"),
        (lambda: raw(good(KEYS, issued_at=time.time() - 600, ttl_s=60)), "expired", "expired at"),
        (lambda: resigned(good(KEYS), KEYS, remedy="drop_tables"), "rejected",
         "invalid command: remedy"),
        (lambda: resigned(good(KEYS), KEYS, params={"factor": 5.0}), "rejected",
         "factor: 5.0 is above the upper bound"),
        (lambda: resigned(good(KEYS), KEYS, params={"factor": 0.5, "shell": "ls"}), "rejected",
         "shell: unknown parameter"),
        (lambda: resigned(good(KEYS, cause="model", remedy="reduce_precision"), KEYS,
                          params={"dtype": "; rm -rf /"}), "rejected", "is not one of"),
        (lambda: resigned(good(KEYS), KEYS, device="mps"), "rejected", "takes no device"),
        (lambda: b"{not json", "rejected", "invalid command"),
        (lambda: b'{"action_id": "inc-x:a1"}', "rejected", "invalid command"),
    ],
)  # fmt: skip
def test_bad_commands_are_refused_and_nothing_runs(
    tmp_path: Path, make: object, status: str, detail: str
) -> None:
    recorder = RecordingHandler()
    result = runner(tmp_path, recorder).process(make(), origin="t:0:5")  # type: ignore[operator]
    assert result.status == status
    assert detail in result.detail
    assert recorder.applied == []


def test_invalid_bytes_get_a_traceable_id(tmp_path: Path) -> None:
    r = runner(tmp_path, RecordingHandler())
    assert r.process(b"\xff", origin="actions:0:5").action_id == "invalid:actions:0:5"
    assert r.process(b'{"action_id": "inc-x:a1"}').action_id == "inc-x:a1"


def test_a_command_interrupted_mid_run_is_failed_not_rerun(tmp_path: Path) -> None:
    recorder = RecordingHandler()
    cmd = good(KEYS)
    store = ActionStore(tmp_path)
    store.start(cmd.action_id, cmd.incident_id, cmd.service, handler="recording", now=1.0)
    store.close()  # the process died while the handler ran
    r = runner(tmp_path, recorder)
    recovered = r.recover()
    assert [(x.action_id, x.status, x.detail) for x in recovered] == [
        (cmd.action_id, "failed", INTERRUPTED)
    ]
    for result in recovered:
        r.reported(result)
    assert r.recover() == []
    assert r.process(raw(cmd)).status == "duplicate"
    assert recorder.applied == []


def test_an_interrupted_command_redelivered_before_recovery_is_failed(tmp_path: Path) -> None:
    recorder = RecordingHandler()
    cmd = good(KEYS)
    r = runner(tmp_path, recorder)
    r.store.start(cmd.action_id, cmd.incident_id, cmd.service, handler="recording", now=1.0)
    result = r.process(raw(cmd))
    assert (result.status, result.detail) == ("failed", INTERRUPTED)
    assert recorder.applied == []


def test_handler_failures_and_timeouts_are_reported_failed(tmp_path: Path) -> None:
    r = runner(tmp_path, RecordingHandler(fail="disk full"))
    failed = r.process(raw(good(KEYS)))
    assert failed.status == "failed" and "disk full" in failed.detail
    slow = runner(tmp_path / "slow", RecordingHandler(sleep_s=5), handler_timeout_s=0.2)
    timed_out = slow.process(raw(good(KEYS)))
    assert timed_out.status == "failed" and "timeout after 0.2s" in timed_out.detail
    with pytest.raises(HandlerTimeout):
        run_bounded(lambda: time.sleep(1) or "late", 0.05, "x")


def test_dry_run_goes_to_the_log_handler_whatever_the_configuration(tmp_path: Path) -> None:
    recorder = RecordingHandler()
    r = runner(tmp_path, recorder, handlers={"memory": "recording"})
    result = r.process(raw(good(KEYS, dry_run=True)))
    assert (result.status, result.handler) == ("applied", "log")
    assert recorder.applied == []


def test_accepted_key_ids_restrict_the_keyring(tmp_path: Path) -> None:
    r = runner(tmp_path, RecordingHandler(), accepted_key_ids=["k2"])
    result = r.process(raw(good(KEYS)))
    assert result.status == "rejected" and "not accepted" in result.detail
