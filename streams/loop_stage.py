"""The loop agent: breaches, diagnoses, action results and windows in; incidents, commands,
verdicts and labels out.

One Faust agent reads the four topics (all keyed by service, so one service's events meet on
one worker) and keeps each service's :class:`~streams.incident.ServiceBook` in the
``loop-state`` table, and each closed window's observations in the ``loop-windows`` table
(:class:`~streams.incident.WindowArchive`). For every event it computes what to send with the pure
:class:`~streams.loop.Loop`, sends it and waits until Kafka has it, and only then stores the
new book: a crash replays the event and sends the same messages again (same ids: consumers
dedupe, executors never run an action twice) instead of losing them.

The planner's bandit is one per worker, saved to the worker's state folder after every reward.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from actions.bandit import RemedyBandit
from actions.planner import Planner
from actions.signing import Keyring
from schemas.config import PerfloopConfig
from schemas.messages import ActionResult, Breach, Diagnosis, WindowAggregate
from streams.incident import ServiceBook, WindowArchive
from streams.loop import Loop, LoopOutput
from streams.window_stage import dead_letter

log = logging.getLogger("perfloop.loop")
BANDIT_FILE = "bandit.json"


def _load_planner(config: PerfloopConfig, state_dir: Path) -> Planner:
    path = state_dir / BANDIT_FILE
    bandit = RemedyBandit.loads(path.read_text()) if path.exists() else None
    return Planner(config.planner, bandit)


def _save_bandit(planner: Planner, state_dir: Path) -> None:
    path = state_dir / BANDIT_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(planner.bandit.dumps())
    os.replace(tmp, path)


def install_loop(
    app: Any, config: PerfloopConfig, topic: Callable[..., Any], keys: Keyring
) -> Loop:
    """Add the loop agent and its table to the worker's Faust ``app``."""
    names = config.topics.names
    state_dir = Path(config.worker.state_dir) / "planner"
    state_dir.mkdir(parents=True, exist_ok=True)
    loop = Loop(config, _load_planner(config, state_dir), keys)
    table = app.Table(
        "loop-state",
        partitions=config.topics.partitions,
        key_type=bytes,
        value_type=bytes,
        extra_topic_configs={"max.message.bytes": str(16 * 1024 * 1024)},
    )
    # each closed window's observations, once, keyed by service and window start
    archive = WindowArchive(
        app.Table(
            "loop-windows",
            partitions=config.topics.partitions,
            key_type=bytes,
            value_type=bytes,
        )
    )
    sources = topic(names.breaches, names.diagnoses, names.action_results, names.windows)
    dlq = topic(names.dlq)
    outputs = {
        "transitions": topic(names.incidents),
        "commands": topic(names.actions),
        "verifications": topic(names.verifications),
        "labels": topic(names.labels),
    }

    def handle(book: ServiceBook, source: str, value: bytes) -> LoopOutput:
        if source == names.windows:
            return loop.on_window(book, WindowAggregate.model_validate_json(value))
        if source == names.breaches:
            return loop.on_breach(book, Breach.model_validate_json(value))
        if source == names.diagnoses:
            return loop.on_diagnosis(book, Diagnosis.model_validate_json(value))
        return loop.on_result(book, ActionResult.model_validate_json(value))

    async def send(out: LoopOutput, key: bytes) -> None:
        pending = []
        for kind in ("verifications", "transitions", "commands", "labels"):
            for message in getattr(out, kind):
                pending.append(
                    await outputs[kind].send(key=key, value=message.model_dump_json().encode())
                )
        for fut in pending:
            await fut  # durable before the book that remembers it is stored

    @app.agent(sources)
    async def incidents(stream: Any) -> None:
        async for event in stream.events():
            msg = event.message
            key = msg.key
            if not key:
                log.warning("%s[%d]@%d has no service key; ignored", msg.topic, msg.partition,
                            msg.offset)  # fmt: skip
                continue
            blob = table.get(key)
            book = (
                ServiceBook.loads(blob, archive)
                if blob
                else ServiceBook(key.decode(), archive=archive)
            )
            try:
                out = handle(book, msg.topic, event.value)
            except ValueError as exc:  # a malformed message from outside: dead-letter, go on
                log.error("%s[%d]@%d rejected: %s", msg.topic, msg.partition, msg.offset, exc)
                letter = dead_letter(msg, msg.topic, str(exc), None, time.time())
                await dlq.send(key=key, value=letter.model_dump_json().encode())
                continue
            await send(out, key)
            for area, cause, remedy, success, ts in out.rewards:
                loop.planner.reward(area, cause, remedy, success, ts)
            if out.rewards:
                _save_bandit(loop.planner, state_dir)
            table[key] = book.dumps()

    return loop
