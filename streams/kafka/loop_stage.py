"""The loop agent: breaches, diagnoses, action results and windows in; incidents, commands,
verdicts and labels out.

One Faust agent reads the four topics (all keyed by service, so one service's events meet on
one worker) and keeps each service's :class:`~perfloop.streams.incident.ServiceBook` in the
``loop-state`` table, and each closed window's observations in the ``loop-windows`` table
(:class:`~perfloop.streams.incident.WindowArchive`). For every event it computes what to send with
the pure :class:`~perfloop.streams.loop.Loop` and sends it; events are handled in batches, and only
once Kafka has every message of a batch are the new books stored: a crash replays the events and
sends the same messages again (same ids: consumers dedupe, executors never run an action twice)
instead of losing them.

Faust interleaves the four topics as it fetches them, so after a long stop the agent can read
the windows of the downtime before an action result it had already handled once. A window that
passes a command's result deadline is therefore handed to the loop with whether results may
still be waiting unread (:class:`ResultsProgress`); the command escalates only once none can.

The planner's bandit is one per worker, saved to the worker's state folder after every reward.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from perfloop.actions.bandit import RemedyBandit
from perfloop.actions.kafka_clients import KafkaConsumer, TopicPartition
from perfloop.actions.planner import Planner
from perfloop.actions.signing import Keyring
from perfloop.schemas.config import PerfloopConfig
from perfloop.schemas.messages import ActionResult, Breach, Diagnosis, WindowAggregate
from perfloop.schemas.topics import MAX_STATE_BYTES
from perfloop.streams.incident import ServiceBook, WindowArchive
from perfloop.streams.kafka.batches import dead_letter_json, in_batches, writing_to
from perfloop.streams.loop import Loop, LoopOutput

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


class ResultsProgress:
    """Whether the loop agent may still have unread records on its ``action-results``
    partitions: asked only when a window passes a command's result deadline.

    A partition is read up to the offset after the last result the agent handled, or up to
    the group's committed offset when that is further (the agent may not have handled any
    since it got the partition); it is behind while that is short of the partition's end.
    A "behind" answer stands for ``recheck_s`` seconds, or until the agent handles a result,
    so that a backlog of windows past deadlines asks the broker about once a second.
    """

    def __init__(
        self,
        config: PerfloopConfig,
        assigned: Callable[[], Iterable[int]],
        recheck_s: float = 1.0,
    ) -> None:
        self.assigned = assigned  # the action-results partitions the agent reads
        self.topic = config.topics.names.action_results
        self.bootstrap = config.broker.bootstrap
        self.group = config.worker.app_id
        self.recheck_s = recheck_s
        self.read: dict[int, int] = {}  # partition -> offset after the last result handled
        self._behind_until = 0.0  # monotonic time until which the last "behind" stands

    def handled(self, partition: int, offset: int) -> None:
        """The agent is done with the result at ``offset``."""
        self.read[partition] = max(self.read.get(partition, 0), offset + 1)
        self._behind_until = 0.0

    def forget(self) -> None:
        """After a rebalance: a partition given back is read again from the committed offset."""
        self.read.clear()
        self._behind_until = 0.0

    async def behind(self) -> bool:
        """True while an assigned partition has results the agent has not handled; False when
        none has, or when the broker cannot tell (a deadline then escalates as it would)."""
        if time.monotonic() < self._behind_until:
            return True
        partitions = sorted(self.assigned())
        if not partitions:
            return False
        try:
            ends = await asyncio.to_thread(self._offsets, partitions)
        except Exception as exc:  # noqa: BLE001 - the deadline goes on without the check
            log.warning("cannot read the offsets of %s: %s", self.topic, exc)
            return False
        behind = any(
            max(self.read.get(p, 0), committed) < end for p, (committed, end) in ends.items()
        )
        if behind:
            self._behind_until = time.monotonic() + self.recheck_s
        return behind

    def _offsets(self, partitions: list[int]) -> dict[int, tuple[int, int]]:
        """Per partition, the group's committed offset (the log start if none) and the end;
        a client of its own for the call (it is rare: only past a deadline)."""
        client = KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            enable_auto_commit=False,
            client_id=f"{self.group}-results-progress",
        )
        try:
            tps = [TopicPartition(self.topic, p) for p in partitions]
            starts = client.beginning_offsets(tps)
            ends = client.end_offsets(tps)
            out = {}
            for tp in tps:
                committed = client.committed(tp)
                out[tp.partition] = (starts[tp] if committed is None else committed, ends[tp])
            return out
        finally:
            client.close()


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
        extra_topic_configs={"max.message.bytes": str(MAX_STATE_BYTES)},
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

    progress = ResultsProgress(
        config,
        lambda: [
            tp.partition for tp in app.consumer.assignment() if tp.topic == names.action_results
        ],
    )

    @app.on_partitions_revoked.connect
    async def forget_progress(app_: Any, revoked: Any, **_: Any) -> None:
        progress.forget()

    async def handle(book: ServiceBook, source: str, value: bytes) -> LoopOutput:
        if source == names.windows:
            window = WindowAggregate.model_validate_json(value)
            behind = loop.result_overdue(book, window.end) and await progress.behind()
            return loop.on_window(book, window, results_behind=behind)
        if source == names.breaches:
            return loop.on_breach(book, Breach.model_validate_json(value))
        if source == names.diagnoses:
            return loop.on_diagnosis(book, Diagnosis.model_validate_json(value))
        return loop.on_result(book, ActionResult.model_validate_json(value))

    async def send(out: LoopOutput, key: bytes) -> list[Any]:
        """Send ``out``; the futures of its messages."""
        pending = []
        for kind in ("verifications", "transitions", "commands", "labels"):
            for message in getattr(out, kind):
                pending.append(
                    await outputs[kind].send(key=key, value=message.model_dump_json().encode())
                )
        return pending

    @app.agent(sources)
    async def incidents(stream: Any) -> None:
        await in_batches(stream, incidents_batch)

    async def incidents_batch(events: list[Any]) -> None:
        """Handle a batch of events in order (acked once this returns). The
        messages of the whole batch are awaited together: each book is stored, and each
        reward learned, only once the messages it remembers are durable."""
        books: dict[bytes, tuple[int, ServiceBook]] = {}  # service -> (partition, book)
        rewards: list[tuple[str, str, str, bool, float]] = []
        pending: list[Any] = []
        for event in events:
            msg = event.message
            key = msg.key
            if msg.topic == names.action_results:  # handled before any later event is
                progress.handled(msg.partition, msg.offset)
            if not key:
                log.warning("%s[%d]@%d has no service key; ignored", msg.topic, msg.partition,
                            msg.offset)  # fmt: skip
                continue
            held = books.get(key)
            if held is not None:
                book = held[1]
            else:
                blob = table.get(key)
                book = (
                    ServiceBook.loads(blob, archive)
                    if blob
                    else ServiceBook(key.decode(), archive=archive)
                )
            try:
                with writing_to(msg.partition):  # the window archive's writes
                    out = await handle(book, msg.topic, event.value)
            except ValueError as exc:  # a malformed message from outside: dead-letter, go on
                log.error("%s[%d]@%d rejected: %s", msg.topic, msg.partition, msg.offset, exc)
                pending.append(await dlq.send(key=key, value=dead_letter_json(msg, str(exc))))
                continue
            books[key] = (msg.partition, book)
            pending += await send(out, key)
            rewards += out.rewards
        await asyncio.gather(*pending)  # durable before the books that remember them
        for area, cause, remedy, success, ts in rewards:
            loop.planner.reward(area, cause, remedy, success, ts)
        if rewards:
            _save_bandit(loop.planner, state_dir)
        for key, (partition, book) in books.items():
            with writing_to(partition):
                table[key] = book.dumps()

    return loop
