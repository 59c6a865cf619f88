"""The handlers on their own: log, webhook (a local HTTP server), command argv, plugins."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from action_commands import good
from executor_support import PROBE, Hook

from perfloop.actions.command import CommandError, CommandHandler, check_template, render_argv
from perfloop.actions.handlers import LogHandler, RecordingHandler, build_handlers, handler_name_for
from perfloop.actions.signing import Keyring
from perfloop.actions.webhook import WebhookError, WebhookHandler
from perfloop.schemas.config import ExecutorConfig
from perfloop.schemas.messages import ActionCommand

KEYS = Keyring.parse("handler-secret-0123456789")


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.close()


def test_log_handler_writes_one_json_line_per_command(tmp_path: Path) -> None:
    handler = LogHandler(tmp_path)
    cmd = good(KEYS)
    assert handler.apply(cmd) == "logged to actions.jsonl"
    assert handler.apply(good(KEYS, dry_run=True)) == "dry-run"
    lines = [json.loads(x) for x in (tmp_path / "actions.jsonl").read_text().splitlines()]
    assert [x["action_id"] for x in lines][0] == cmd.action_id
    assert "signature" not in lines[0] and lines[1]["dry_run"] is True


def test_webhook_posts_the_command_json(hook: Hook) -> None:
    cmd = good(KEYS)
    assert WebhookHandler(hook.url).apply(cmd) == f"POST {hook.url} -> 204"
    assert hook.calls[0]["action"] == cmd.action_id
    assert ActionCommand.model_validate(hook.calls[0]["body"]) == cmd


def test_webhook_retries_server_errors_with_backoff(hook: Hook) -> None:
    hook.statuses = [503, 502, 200]
    handler = WebhookHandler(hook.url, retries=2, backoff_s=0.01)
    assert handler.apply(good(KEYS)).endswith("-> 200")
    assert len(hook.calls) == 3


def test_webhook_fails_on_client_errors_and_after_bounded_retries(hook: Hook) -> None:
    hook.statuses = [400]
    with pytest.raises(WebhookError, match="400"):
        WebhookHandler(hook.url, retries=3, backoff_s=0.01).apply(good(KEYS))
    assert len(hook.calls) == 1
    hook.statuses = [500, 500]
    with pytest.raises(WebhookError, match=r"500 .*after 2 attempts"):
        WebhookHandler(hook.url, retries=1, backoff_s=0.01).apply(good(KEYS))
    with pytest.raises(WebhookError, match="failed"):
        WebhookHandler("http://127.0.0.1:9/", retries=0, timeout_s=1).apply(good(KEYS))


def test_command_handler_passes_values_as_whole_argv_items(tmp_path: Path) -> None:
    out = tmp_path / "argv.jsonl"
    template = [sys.executable, PROBE, str(out), str(tmp_path / "no-hold"), "--remedy",
                "{remedy}", "--dtype", "{param:dtype}", "{service}", "{dry_run}"]  # fmt: skip
    handler = CommandHandler({"reduce_precision": template}, timeout_s=20)
    cmd = good(KEYS, cause="model", remedy="reduce_precision", params={"dtype": "bfloat16"})
    assert handler.apply(cmd).startswith(f"{sys.executable}: exit 0")
    assert json.loads(out.read_text()) == [
        "--remedy", "reduce_precision", "--dtype", "bfloat16", "api", "false",
    ]  # fmt: skip
    with pytest.raises(CommandError, match="no command configured"):
        handler.apply(good(KEYS))


def test_hostile_text_never_becomes_more_than_one_inert_argument() -> None:
    template = ["/bin/echo", "{service}", "{param:dtype}"]
    cmd = good(KEYS, cause="model", remedy="reduce_precision", params={"dtype": "int8"})
    hostile_service = cmd.model_copy(update={"service": "x; rm -rf / #"})
    assert render_argv(template, hostile_service) == ["/bin/echo", "x; rm -rf / #", "int8"]
    hostile_param = cmd.model_copy(update={"params": {"dtype": "; rm -rf /"}})
    with pytest.raises(CommandError, match="not an allowed value"):
        render_argv(template, hostile_param)


@pytest.mark.parametrize(
    ("template", "message"),
    [([], "empty"), (["{remedy}"], "program must be fixed text"),
     (["/bin/tool", "--x={param:x}"], "whole item"), (["/bin/tool", "{shell}"], "whole item")],
)  # fmt: skip
def test_unsafe_templates_are_refused_at_start(template: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_template("default", template)


def test_command_failures_and_timeouts(tmp_path: Path) -> None:
    fails = CommandHandler({"default": [sys.executable, "-c", "import sys; sys.exit(3)"]})
    with pytest.raises(CommandError, match="exit 3"):
        fails.apply(good(KEYS))
    hold = tmp_path / "hold"
    hold.touch()
    slow = CommandHandler({"default": [sys.executable, PROBE, str(tmp_path / "o"), str(hold)]},
                          timeout_s=0.5)  # fmt: skip
    with pytest.raises(CommandError, match="timeout after 0.5s"):
        slow.apply(good(KEYS))
    missing = CommandHandler({"default": [str(tmp_path / "no-such-program")]})
    with pytest.raises(CommandError, match="cannot run"):
        missing.apply(good(KEYS))


def test_handler_routing_most_specific_first() -> None:
    config = ExecutorConfig(handlers={"memory": "a", "memory/cache": "b", "reduce_ttl": "c",
                                      "memory/cache/compress_data": "d"},
                            default_handler="e")  # fmt: skip
    assert handler_name_for(config, good(KEYS)) == "c"
    assert handler_name_for(config, good(KEYS, remedy="compress_data")) == "d"
    assert handler_name_for(config, good(KEYS, remedy="increase_eviction")) == "b"
    assert handler_name_for(config, good(KEYS, cause="workers", remedy="improve_cleanup")) == "a"
    assert handler_name_for(config, good(KEYS, area="latency", cause="network",
                                         remedy="use_compression")) == "e"  # fmt: skip
    assert handler_name_for(config, good(KEYS, dry_run=True)) == "log"


def test_build_handlers_names_unknown_handlers_and_bad_settings(tmp_path: Path) -> None:
    built = build_handlers(ExecutorConfig(state_dir=str(tmp_path)))
    assert set(built) == {"log"}
    extra = RecordingHandler("mine")
    config = ExecutorConfig(state_dir=str(tmp_path), default_handler="mine")
    assert build_handlers(config, {"mine": extra})["mine"] is extra
    with pytest.raises(ValueError, match="unknown handler 'teleport'"):
        build_handlers(ExecutorConfig(default_handler="teleport"))
    with pytest.raises(ValueError, match="executor.webhook.url: not set"):
        build_handlers(ExecutorConfig(handlers={"memory": "webhook"}))
    with pytest.raises(ValueError, match="executor.commands: empty"):
        build_handlers(ExecutorConfig(handlers={"memory": "command"}))


def test_webhook_retries_must_fit_inside_the_handler_timeout() -> None:
    config = ExecutorConfig(handlers={"memory": "webhook"}, handler_timeout_s=10,
                            webhook={"url": "http://127.0.0.1:9/", "timeout_s": 5,
                                     "retries": 2})  # fmt: skip
    with pytest.raises(ValueError, match="not below executor.handler_timeout_s"):
        build_handlers(config)
