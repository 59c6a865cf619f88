"""The Faust application: thin agents around the pure stages.

- ``ingest``: ``metrics`` -> ``perfloop.windows`` and ``metrics.dlq``. Batches of records are
  grouped by partition and handed to :class:`~streams.window_stage.WindowStage`. A partition's
  state is checkpointed to the table's changelog at most every
  ``worker.checkpoint_interval_s`` (not after every batch); its outputs are flushed *before*
  the checkpoint is written, and its records are acknowledged (so committed) only once a
  checkpoint covers them. A crash at any point replays records the checkpoint has not seen
  and skips those it has (offset-exact).
- ``detect``: ``perfloop.windows`` -> ``perfloop.breaches``, one detector and the recent
  window history per service in a table (the diagnose stage reads that history).
- a one-second timer advances idle partitions' watermarks.

Every topic is keyed by service, so a service's windows, breaches and state share a
partition number and live on one worker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import faust

from actions.signing import Keyring
from schemas.config import PerfloopConfig
from schemas.messages import Breach, DeadLetter, WindowAggregate
from streams.decoded import RawRecord
from streams.detect import Detector
from streams.diagnose_stage import install_diagnose
from streams.loop_stage import install_loop
from streams.window_stage import WindowStage

log = logging.getLogger("perfloop.worker")

MAX_STATE_BYTES = 16 * 1024 * 1024
INGEST_BATCH = 10_000
INGEST_WITHIN_S = 0.2


@dataclass
class Topics:
    metrics: Any
    dlq: Any
    windows: Any
    breaches: Any


def build_app(config: PerfloopConfig, keys: Keyring | None = None) -> tuple[faust.App, WindowStage]:
    """The worker's Faust app for ``config`` and the window stage it drives.

    With ``keys`` (the action channel's signing keys) the closed loop runs too."""
    names = config.topics.names
    partitions = config.topics.partitions
    app = faust.App(
        config.worker.app_id,
        broker=[f"kafka://{host.strip()}" for host in config.broker.bootstrap.split(",")],
        store="memory://",
        datadir=config.worker.state_dir,
        web_enabled=False,
        topic_partitions=partitions,
        topic_replication_factor=config.topics.replication_factor,
        consumer_auto_offset_reset="earliest",
        producer_max_request_size=MAX_STATE_BYTES + 65536,
        producer_acks=-1,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        broker_session_timeout=config.worker.session_timeout_s,
        broker_heartbeat_interval=config.worker.heartbeat_interval_s,
        key_serializer="raw",
        value_serializer="raw",
    )

    def topic(*topic_names: str) -> Any:
        return app.topic(
            *topic_names,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=partitions,
        )

    topics = Topics(
        topic(names.metrics), topic(names.dlq), topic(names.windows), topic(names.breaches)
    )
    window_state = app.Table(
        "window-state",
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
        extra_topic_configs={"max.message.bytes": str(MAX_STATE_BYTES)},
    )
    detect_state = app.Table(
        "detect-state",
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
        extra_topic_configs={"max.message.bytes": str(MAX_STATE_BYTES)},
    )
    stage = WindowStage(config.windows, config.ingest, source_topic=names.metrics)
    lock = asyncio.Lock()

    def ensure_restored(partition: int) -> None:
        if partition in stage.partitions():
            return
        blob = window_state.data.get(_pkey(partition))
        if blob:
            stage.restore(partition, blob)
            log.info(
                "partition %d: window state restored at offset %d",
                partition,
                stage.last_offset(partition),
            )

    def emit(windows: Iterable[WindowAggregate], dead: Iterable[DeadLetter]) -> None:
        """Hand windows and dead letters to the producer (durable at the next flush)."""
        for w in windows:
            topics.windows.send_soon(key=w.service.encode(), value=w.model_dump_json().encode())
        for d in dead:
            key = base64_key(d.key_b64)
            topics.dlq.send_soon(key=key, value=d.model_dump_json().encode())

    def checkpoint(partition: int) -> None:
        blob = stage.checkpoint(partition)
        if len(blob) > MAX_STATE_BYTES:
            raise RuntimeError(
                f"window state of partition {partition} is {len(blob)} bytes, over "
                f"{MAX_STATE_BYTES}: raise topics.partitions or shorten windows.length_s"
            )
        window_state.send_changelog(partition, _pkey(partition), blob)
        window_state.data[_pkey(partition)] = blob

    interval = config.worker.checkpoint_interval_s
    pending = _Pending()

    async def settle(partitions: Iterable[int], force: bool = False) -> None:
        """Checkpoint those of ``partitions`` that are due, then acknowledge their records.

        The windows the records closed are flushed first (a checkpoint must never be durable
        without them), and faust flushes the producer, checkpoints included, before it
        commits what was acknowledged."""
        clock = time.monotonic()
        due = [p for p in partitions if force or pending.due(p, clock)]
        if not due:
            return
        await app.producer.flush()
        for partition in due:
            if partition in stage.partitions():
                checkpoint(partition)
            pending.checkpointed(partition, clock + interval)
        for partition in due:
            await pending.ack(partition)

    @app.agent(topics.metrics)
    async def ingest(stream: Any) -> None:
        pending.stream = stream
        async for events in stream.noack_take(INGEST_BATCH, within=INGEST_WITHIN_S):
            by_partition: dict[int, list[RawRecord]] = defaultdict(list)
            for event in events:
                msg = event.message
                by_partition[msg.partition].append(
                    RawRecord(msg.value, msg.key, msg.partition, msg.offset)
                )
            async with lock:
                now = time.time()
                for partition, records in sorted(by_partition.items()):
                    ensure_restored(partition)
                    out = stage.process(partition, records, now)
                    emit(out.windows, out.dead_letters)
                pending.add(events, time.monotonic() + interval)
                await settle(by_partition)

    @app.timer(interval=min(interval, 1.0) / 2)
    async def checkpoint_due() -> None:
        """Checkpoint quiet partitions too, so their records are committed (and a rebalance,
        which waits for every record to be acknowledged, is not held up)."""
        async with lock:
            await settle(pending.partitions())

    @app.timer(interval=1.0)
    async def advance_idle() -> None:
        if app.rebalancing or not app.tables.recovery.completed.is_set():  # type: ignore[attr-defined]
            return
        async with lock:
            assigned = app.consumer.assignment() if app.consumer else set()
            for tp in assigned:
                if tp.topic == names.metrics:
                    ensure_restored(tp.partition)
            closed = stage.advance_idle(time.time())
            for windows in closed.values():
                emit(windows, [])
            await settle(closed, force=True)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def forget_revoked(app_: Any, revoked: Any, **_: Any) -> None:
        async with lock:
            for tp in revoked:
                if tp.topic == names.metrics:
                    pending.forget(tp.partition)
                    stage.drop(tp.partition)

    @app.agent(topics.windows)
    async def detect(stream: Any) -> None:
        async for event in stream.events():
            window = WindowAggregate.model_validate_json(event.value)
            key = window.service.encode()
            state = _ServiceState.load(detect_state.get(key), detect_state.get(b"h:" + key), config)
            breaches = state.observe(window, config.windows.history_windows)
            # the history first (idempotent), so the diagnose stage finds the breach window;
            # each breach also keeps the windows it saw, so its diagnosis does not depend on
            # how far detection has run ahead of diagnosis (a replay diagnoses the same)
            detect_state[b"h:" + key] = state.dump_history()
            for breach in breaches:
                detect_state[b"b:" + breach.breach_id.encode()] = state.dump_history()
            for breach in breaches:
                fut = await topics.breaches.send(key=key, value=breach.model_dump_json().encode())
                await fut  # the breach is durable before the detector state that remembers it
            detect_state[key] = state.dump_detector()

    def history_of(breach: Breach) -> list[WindowAggregate]:
        """The windows the breach was detected on."""
        snapshot = detect_state.get(b"b:" + breach.breach_id.encode())
        if snapshot is None:  # a redelivered, already diagnosed breach: the current history
            snapshot = detect_state.get(b"h:" + breach.service.encode())
        return _ServiceState.load(None, snapshot, config).windows()

    def diagnosed(breach: Breach) -> None:
        """The breach's diagnosis is out: its snapshot of windows is no longer needed."""
        detect_state.pop(b"b:" + breach.breach_id.encode(), None)

    install_diagnose(app, config, topic, history_of, diagnosed)
    if keys is not None:
        install_loop(app, config, topic, keys)
    else:
        log.warning(
            "PERFLOOP_ACTION_KEY is not set: incidents, commands and verification are off; "
            "windows, detection and diagnosis run"
        )

    app.perfloop_stage = stage  # type: ignore[attr-defined]
    return app, stage


def _pkey(partition: int) -> bytes:
    return f"p{partition}".encode()


def base64_key(key_b64: str | None) -> bytes | None:
    import base64

    return base64.b64decode(key_b64) if key_b64 else None


class _Pending:
    """Events applied to the window state but not yet covered by a checkpoint, per partition,
    and when each partition's next checkpoint is due."""

    def __init__(self) -> None:
        self.stream: Any = None
        self._events: dict[int, list[Any]] = defaultdict(list)
        self._due: dict[int, float] = {}

    def add(self, events: Iterable[Any], due: float) -> None:
        for event in events:
            partition = event.message.partition
            self._events[partition].append(event)
            self._due.setdefault(partition, due)

    def partitions(self) -> list[int]:
        return sorted(self._events)

    def due(self, partition: int, clock: float) -> bool:
        return clock >= self._due.get(partition, 0.0)

    def checkpointed(self, partition: int, next_due: float) -> None:
        self._due[partition] = next_due

    async def ack(self, partition: int) -> None:
        events = self._events.pop(partition, [])
        ack = self.stream.ack
        for event in events:
            await ack(event)

    def forget(self, partition: int) -> None:
        """A revoked partition: its records stay uncommitted (the next owner replays them
        from its last checkpoint)."""
        self._events.pop(partition, None)
        self._due.pop(partition, None)


class _ServiceState:
    """One service's detector and recent windows, as stored in the detect-state table."""

    def __init__(self, detector: Detector, history: list[dict[str, Any]]) -> None:
        self.detector = detector
        self.history = history

    @classmethod
    def load(
        cls, detector: bytes | None, history: bytes | None, config: PerfloopConfig
    ) -> _ServiceState:
        det = (
            Detector.from_json(json.loads(detector), config.detection)
            if detector
            else Detector(config.detection)
        )
        return cls(det, json.loads(history) if history else [])

    def observe(self, window: WindowAggregate, keep: int) -> list[Breach]:
        events = self.detector.observe(window)
        if not self.history or window.start > self.history[-1]["start"]:
            slim = window.model_dump(mode="json")
            for series in slim["series"]:
                series["sample"] = []
            self.history = [*self.history, slim][-keep:]
        return [e for e in events if isinstance(e, Breach)]

    def dump_detector(self) -> bytes:
        return json.dumps(self.detector.to_json(), separators=(",", ":")).encode()

    def dump_history(self) -> bytes:
        return json.dumps(self.history, separators=(",", ":")).encode()

    def windows(self) -> list[WindowAggregate]:
        return [WindowAggregate.model_validate(w) for w in self.history]
