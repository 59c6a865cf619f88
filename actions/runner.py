"""What an executor does with one command's bytes, without Kafka: admit, dedupe, dispatch.

Order of checks: parse and schema (``rejected``), signature and key id (``rejected``), the
dedupe store (``duplicate``, or the stored result if it was never reported), expiry against
the wall clock at receipt (``expired``), the catalog, parameter bounds and device
(``rejected``). Only then is the ``started`` row written and the handler run, bounded by
``handler_timeout_s`` (``applied`` or ``failed``).

A command found ``started`` but never finished (the executor died while it ran) is **not**
re-run: handlers have side effects and may not be idempotent, so it is reported ``failed``
with detail ``interrupted; not re-run`` and the planner moves on. The side effect therefore
happens at most once and the command is never lost.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from perfloop.actions.catalog import DEVICES, remedy, validate_params
from perfloop.actions.handlers import Handler, handler_name_for
from perfloop.actions.params import ParamError
from perfloop.actions.signing import Keyring, check_signature, expiry_reason
from perfloop.actions.store import ActionStore, StoredAction
from perfloop.schemas.config import ExecutorConfig
from perfloop.schemas.messages import ActionCommand, ActionResult

INTERRUPTED = "interrupted; not re-run (the handler may have run before the executor stopped)"
_NAME = re.compile(r"^[A-Za-z0-9_.:/@-]{1,128}$")


class HandlerTimeout(RuntimeError):
    """A handler did not return within the executor's ``handler_timeout_s``."""


def run_bounded(fn: Callable[[], str], timeout_s: float, name: str) -> str:
    """``fn()`` in a daemon thread; ``HandlerTimeout`` if it takes longer than ``timeout_s``.

    >>> run_bounded(lambda: "ok", 1.0, "demo")
    'ok'
    """
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["detail"] = fn()
        except BaseException as exc:  # reported as the command's failure
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name=f"handler-{name}", daemon=True).start()
    if not done.wait(timeout_s):
        raise HandlerTimeout(f"timeout after {timeout_s:g}s")
    if "error" in box:
        raise box["error"]
    return str(box["detail"])


class CommandRunner:
    """Turns command bytes into an :class:`ActionResult`, running each command at most once."""

    def __init__(
        self,
        config: ExecutorConfig,
        keys: Keyring,
        handlers: dict[str, Handler],
        store: ActionStore,
        executor_id: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.keys = keys
        self.handlers = handlers
        self.store = store
        self.executor_id = executor_id
        self.clock = clock

    def process(self, raw: bytes, origin: str = "unknown") -> ActionResult:
        """The result for one message; runs its handler only if every check passes."""
        began = time.monotonic()
        try:
            command = ActionCommand.model_validate_json(raw)
        except ValidationError as exc:
            ids = _raw_fields(raw, origin)
            return self._result(ids, "rejected", _first_error(exc), began)
        reason = check_signature(command, self.keys, self.config.accepted_key_ids)
        if reason:
            return self._result(command, "rejected", reason, began)
        stored = self.store.get(command.action_id)
        if stored is not None:
            return self._replay(stored, command, began)
        reason = expiry_reason(command, self.clock())
        if reason:
            return self._result(command, "expired", reason, began)
        reason = _catalog_reason(command)
        if reason:
            return self._result(command, "rejected", reason, began)
        return self._run(command)

    def recover(self) -> list[ActionResult]:
        """At start-up: close interrupted commands as failed, and return every result not yet
        reported (the caller produces them, then calls :meth:`reported`)."""
        for action_id in self.store.unfinished():
            self.store.finish(action_id, "failed", INTERRUPTED, 0.0, now=self.clock())
        results = []
        for action_id in self.store.unreported():
            stored = self.store.get(action_id)
            if stored is not None:
                results.append(self._from_store(stored))
        return results

    def reported(self, result: ActionResult) -> None:
        """``result`` is on the results topic; its command's row (if any) is complete."""
        if result.status in ("applied", "failed"):
            self.store.mark_reported(result.action_id)

    def _run(self, command: ActionCommand) -> ActionResult:
        name = handler_name_for(self.config, command)
        handler = self.handlers[name]
        if not self.store.start(
            command.action_id, command.incident_id, command.service, handler=name,
            now=self.clock(),
        ):  # fmt: skip
            stored = self.store.get(command.action_id)
            assert stored is not None
            return self._replay(stored, command, time.monotonic())
        began = time.monotonic()
        try:
            detail = run_bounded(
                lambda: handler.apply(command), self.config.handler_timeout_s, command.action_id
            )
            status = "applied"
        except Exception as exc:
            detail, status = f"{type(exc).__name__}: {exc}"[:4000], "failed"
        duration = (time.monotonic() - began) * 1000
        self.store.finish(command.action_id, status, detail, duration, now=self.clock())
        stored = self.store.get(command.action_id)
        assert stored is not None
        return self._from_store(stored)

    def _replay(self, stored: StoredAction, command: ActionCommand, began: float) -> ActionResult:
        if stored.state == "started":  # claimed by a run that never finished
            self.store.finish(stored.action_id, "failed", INTERRUPTED, 0.0, now=self.clock())
            stored = self.store.get(stored.action_id) or stored
        if not stored.reported:
            return self._from_store(stored)
        detail = f"already {stored.status} by this executor"
        return self._result(command, "duplicate", detail, began, handler=stored.handler)

    def _from_store(self, stored: StoredAction) -> ActionResult:
        return ActionResult.model_validate(
            {
                "action_id": stored.action_id,
                "incident_id": stored.incident_id,
                "service": stored.service,
                "status": stored.status,
                "detail": stored.detail,
                "handler": stored.handler,
                "executor": self.executor_id,
                "duration_ms": stored.duration_ms,
                "ts": self.clock(),
            }
        )

    def _result(
        self, command: ActionCommand | tuple[str, str | None, str | None], status: str,
        detail: str, began: float, handler: str | None = None,
    ) -> ActionResult:  # fmt: skip
        ids: tuple[str, str | None, str | None]
        if isinstance(command, ActionCommand):
            ids = (command.action_id, command.incident_id, command.service)
        else:
            ids, detail = command, f"invalid command: {detail}"
        return ActionResult.model_validate(
            {
                "action_id": ids[0],
                "incident_id": ids[1],
                "service": ids[2],
                "status": status,
                "detail": detail[:4000],
                "handler": handler,
                "executor": self.executor_id,
                "duration_ms": (time.monotonic() - began) * 1000,
                "ts": self.clock(),
            }
        )


def _catalog_reason(command: ActionCommand) -> str | None:
    try:
        entry = remedy(command.area, command.cause, command.remedy)
        validate_params(command.area, command.cause, command.remedy, dict(command.params))
    except ParamError as exc:
        return str(exc)
    if entry.accelerator and command.device not in DEVICES:
        return f"device: {command.device!r} is not one of {', '.join(DEVICES)}"
    if not entry.accelerator and command.device is not None:
        return f"device: {command.remedy} takes no device (got {command.device!r})"
    return None


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    if not errors:
        return str(exc)
    first = errors[0]
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    where = ".".join(str(p) for p in first.get("loc", ()))
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {message}{more}" if where else f"{message}{more}"


def _raw_fields(raw: bytes, origin: str) -> tuple[str, str | None, str | None]:
    """(action_id, incident_id, service) of an invalid message, as far as they are readable
    (so the planner can match the rejection); a made-up id from ``origin`` otherwise."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        data = {}
    found = [data.get(k) for k in ("action_id", "incident_id", "service")]
    action_id, incident_id, service = (
        v if isinstance(v, str) and _NAME.match(v) else None for v in found
    )
    return (action_id or f"invalid:{origin}"[:128], incident_id, service)
