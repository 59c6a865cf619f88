"""Executor handlers: what actually applies a verified command on the executor's side.

A handler is a :class:`Handler` (``name`` and ``apply(command) -> detail``, raising on
failure). Which handler runs a command is the executor's configuration, never the message's
(:func:`handler_name_for`). Built-in: ``log`` (here), ``webhook`` (:mod:`perfloop.actions.webhook`),
``command`` (:mod:`perfloop.actions.command`); others are plugins in the ``perfloop.handlers``
entry-point group, each a callable taking the :class:`ExecutorConfig` and returning a handler.

>>> recorder = RecordingHandler()
>>> recorder.apply(_example_command())
'recorded'
>>> [c.remedy for c in recorder.applied]
['reduce_ttl']
"""

from __future__ import annotations

import json
import logging
import threading
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol, runtime_checkable

from perfloop.schemas.config import ExecutorConfig
from perfloop.schemas.messages import ActionCommand

PLUGIN_GROUP = "perfloop.handlers"
BUILTIN = ("log", "webhook", "command")
log = logging.getLogger("perfloop.executor")


@runtime_checkable
class Handler(Protocol):
    """Applies one command; returns a short detail, raises on failure."""

    name: str

    def apply(self, command: ActionCommand) -> str: ...


class LogHandler:
    """Records what would be done: to the ``perfloop.executor`` logger and to a JSON-lines
    file (``actions.jsonl`` in the state directory)."""

    name = "log"

    def __init__(self, state_dir: str | Path) -> None:
        Path(state_dir).mkdir(parents=True, exist_ok=True)
        self.path = Path(state_dir) / "actions.jsonl"
        self._lock = threading.Lock()

    def apply(self, command: ActionCommand) -> str:
        line = command.model_dump(mode="json", exclude={"signature"})
        log.info(
            "%s %s/%s/%s params=%s%s",
            command.action_id,
            command.area,
            command.cause,
            command.remedy,
            json.dumps(command.params, sort_keys=True),
            " (dry-run)" if command.dry_run else "",
        )
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(line, sort_keys=True) + "\n")
        return "dry-run" if command.dry_run else f"logged to {self.path.name}"


class RecordingHandler:
    """A test double: remembers every command it applied; optionally fails or sleeps."""

    def __init__(self, name: str = "recording", fail: str | None = None, sleep_s: float = 0):
        self.name = name
        self.fail = fail
        self.sleep_s = sleep_s
        self.applied: list[ActionCommand] = []

    def apply(self, command: ActionCommand) -> str:
        self.applied.append(command)
        if self.sleep_s:
            threading.Event().wait(self.sleep_s)
        if self.fail:
            raise RuntimeError(self.fail)
        return "recorded"


def handler_name_for(config: ExecutorConfig, command: ActionCommand) -> str:
    """The configured handler for ``command``: most specific mapping first, then default.

    Dry-run commands always go to ``log``.
    """
    if command.dry_run:
        return "log"
    area, cause, remedy = command.area, command.cause, command.remedy
    for key in (f"{area}/{cause}/{remedy}", remedy, f"{area}/{cause}", area):
        if key in config.handlers:
            return config.handlers[key]
    return config.default_handler


def build_handlers(
    config: ExecutorConfig, extra: dict[str, Handler] | None = None
) -> dict[str, Handler]:
    """Every handler the configuration names, built once at start-up.

    ``extra`` supplies ready handler objects by name (tests, embedding). An unknown name is
    a ``ValueError`` naming the configuration field.
    """
    from perfloop.actions.command import CommandHandler  # local: keep each handler module optional
    from perfloop.actions.webhook import WebhookHandler

    extra = dict(extra or {})
    wanted = {"log", config.default_handler, *config.handlers.values()}
    built: dict[str, Handler] = {}
    for name in sorted(wanted):
        if name in extra:
            built[name] = extra[name]
        elif name == "log":
            built[name] = LogHandler(config.state_dir)
        elif name == "webhook":
            hook = WebhookHandler.from_config(config.webhook)
            if hook.worst_case_s() >= config.handler_timeout_s:
                raise ValueError(
                    f"executor.webhook: timeouts and retries may take {hook.worst_case_s():g}s, "
                    f"not below executor.handler_timeout_s ({config.handler_timeout_s:g}s)"
                )
            built[name] = hook
        elif name == "command":
            built[name] = CommandHandler(config.commands, config.handler_timeout_s)
        else:
            built[name] = load_plugin(name, config)
    return built


def load_plugin(name: str, config: ExecutorConfig) -> Handler:
    """The handler plugin ``name`` from the ``perfloop.handlers`` entry points."""
    found = [ep for ep in entry_points(group=PLUGIN_GROUP) if ep.name == name]
    if not found:
        raise ValueError(
            f"executor.handlers: unknown handler {name!r}; built-in: {', '.join(BUILTIN)}; "
            f"no entry point {name!r} in group {PLUGIN_GROUP!r}"
        )
    handler = found[0].load()(config)
    if not isinstance(handler, Handler):
        raise ValueError(f"executor.handlers: plugin {name!r} did not return a handler")
    return handler


def _example_command() -> ActionCommand:
    from perfloop.actions.signing import Keyring, build_command

    return build_command(
        incident_id="inc-1", service="api", area="memory", cause="cache", remedy="reduce_ttl",
        params={}, attempt=1, issued_at=1_700_000_000.0, ttl_s=60.0,
        keys=Keyring.parse("example-secret-0123456789"),
    )  # fmt: skip
