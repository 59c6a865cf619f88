"""The worker's ingest: ``metrics`` -> window stage -> ``perfloop.windows`` and ``metrics.dlq``,
and detect stage -> ``perfloop.breaches``.

Metric records are read in large batches of raw records by an aiokafka consumer of their own
group (``<app_id>.ingest``), not as Faust events: a Faust event (stream, event object, ack,
offset bookkeeping) costs far more than decoding and windowing the point it carries. Two
workers with the same ``app_id`` split the ``metrics`` partitions between them.

State and recovery, per partition:

- the window stage's state (open windows, watermark, the last offset applied) is written as
  one checkpoint record, at most every ``worker.checkpoint_interval_s``, to the compacted
  topic ``<app_id>.window-checkpoints`` on the partition's own number, keyed ``p<partition>``;
  the latest checkpoint is the partition's last record, so a restore reads one record;
- every closed window goes through detection (:mod:`perfloop.streams.detect_stage`) as it closes;
- the windows, breaches and dead letters a batch produced are durable *before* the detection
  states they changed are written, and those *before* the checkpoint that covers the batch;
  the group's offset is committed only after the checkpoint (the commit serves lag
  monitoring; the checkpoint decides where to resume);
- on assignment a partition is restored from its checkpoint and its detection states (read
  back by :class:`~perfloop.streams.kafka.state_reader.StateReader`), and
  read from the offset after the checkpoint; records at or below a checkpoint's offset are
  skipped, so a crash at any point neither loses nor double-counts a point (windows closed
  after the checkpoint are re-emitted with the same ids and contents, and their breaches with
  the same ids: duplicates, harmless downstream);
- on revocation and on a clean stop, owned partitions are checkpointed and committed first.

An idle partition's watermark is advanced once a second (see
:meth:`~perfloop.streams.window_stage.WindowStage.advance_idle_partition`).
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import itertools
import logging
import operator
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, ConsumerStoppedError, IllegalStateError
from mode import Service

from perfloop.schemas.config import PerfloopConfig
from perfloop.schemas.messages import Breach, DeadLetter, WindowAggregate
from perfloop.schemas.topics import MAX_STATE_BYTES, TopicSpec, create_missing_topics, state_topic
from perfloop.streams.detect_stage import HISTORY_HEADER, DetectStage, detect_state_topic
from perfloop.streams.kafka.bare_records import use_bare_records
from perfloop.streams.kafka.state_reader import StateReader
from perfloop.streams.window_stage import WindowStage

log = logging.getLogger("perfloop.ingest")

MAX_CHECKPOINT_BYTES = 16 * 1024 * 1024
MAX_RECORDS = 20_000  # records per batch handed to the window stage
POLL_MS = 200
CHUNK_BYTES = 1024 * 1024  # record values decoded at once
FETCH_PARTITION_BYTES = 4 * 1024 * 1024  # large fetches: the fetcher refills a partition only
FETCH_MAX_BYTES = 32 * 1024 * 1024  # once its buffer is drained, and a refill is a round trip
IDLE_EVERY_S = 1.0
# the worker's producers send a partition's records in batches of up to this size, not
# aiokafka's default 16 KiB, which holds only a few windows or detect states (kilobytes
# each). Detection alone then sent 573 produce requests for 2,000 windows instead of 1,383,
# with about 16 % less CPU a window; the single-point bench's windows were out about 2.5
# times as fast. Kept under the broker's default largest batch, 1 MiB.
PRODUCER_BATCH_BYTES = 512 * 1024
_VALUE = operator.attrgetter("value")


def checkpoint_topic(config: PerfloopConfig) -> TopicSpec:
    """The compacted topic holding the latest window checkpoint of each ``metrics`` partition."""
    return state_topic(
        config.topics,
        role="window_checkpoints",
        name=f"{config.worker.app_id}.window-checkpoints",
        message="window checkpoint (binary)",
        key="partition",
        max_message_bytes=MAX_CHECKPOINT_BYTES + 65_536,
    )


def ingest_group(config: PerfloopConfig) -> str:
    """The consumer group that splits the ``metrics`` partitions between workers."""
    return f"{config.worker.app_id}.ingest"


class Ingest:
    """Consumes ``metrics``, drives a :class:`WindowStage` and checkpoints it (module docstring).

    ``start`` joins the group, ``poll`` handles one batch (call it in a loop), ``stop``
    checkpoints what it owns and leaves."""

    def __init__(self, config: PerfloopConfig) -> None:
        self.config = config
        names = config.topics.names
        self.source = names.metrics
        self.stage = WindowStage(config.windows, config.ingest, source_topic=names.metrics)
        self.detection = DetectStage(config)
        self.checkpoints = checkpoint_topic(config)
        self.states = detect_state_topic(config)
        self.interval = config.worker.checkpoint_interval_s
        self.owned: set[int] = set()
        self._due: dict[int, float] = {}  # partition -> when its pending checkpoint is due
        # (topic, key, value, headers) to send
        self._queued: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]] | None]] = []
        self._sent: list[asyncio.Future[Any]] = []
        self._lock = asyncio.Lock()
        self._next_idle = 0.0
        self._stopping = False
        self._consumer: AIOKafkaConsumer | None = None
        self._reader: StateReader | None = None
        self._producer: AIOKafkaProducer | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        bootstrap = self.config.broker.bootstrap
        created = await asyncio.to_thread(
            create_missing_topics, bootstrap, [self.checkpoints, self.states]
        )
        if created:
            log.info("created topic %s", ", ".join(created))
        worker = self.config.worker
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            client_id=f"{worker.app_id}-ingest",
            acks="all",
            # no lingering: each checkpoint waits for its send, and for the windows sent
            # before it; batches still form while a request is in flight
            linger_ms=0,
            max_request_size=max(MAX_CHECKPOINT_BYTES, MAX_STATE_BYTES) + 65_536,
            max_batch_size=PRODUCER_BATCH_BYTES,
        )
        self._reader = StateReader(
            bootstrap,
            f"{worker.app_id}-checkpoints",
            max(MAX_CHECKPOINT_BYTES, MAX_STATE_BYTES) + 65_536,
        )
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            client_id=f"{worker.app_id}-ingest",
            group_id=ingest_group(self.config),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(worker.session_timeout_s * 1000),
            heartbeat_interval_ms=int(worker.heartbeat_interval_s * 1000),
            max_poll_interval_ms=300_000,
            max_partition_fetch_bytes=FETCH_PARTITION_BYTES,
            fetch_max_bytes=FETCH_MAX_BYTES,
        )
        await self._producer.start()
        await self._reader.start()
        await self._consumer.start()
        use_bare_records(self._consumer)  # value, key and offset are all the stage reads
        self._consumer.subscribe([self.source], listener=_Listener(self))

    async def stop(self) -> None:
        """Checkpoint and commit every owned partition, then leave the group."""
        async with self._lock:
            self._stopping = True
            if self._producer is not None and self._consumer is not None:
                try:
                    await self._checkpoint(sorted(self._due))
                except Exception:  # noqa: BLE001 - the stop goes on; the next owner replays
                    log.exception("final checkpoint failed; the next owner replays from the last")
        for client in (self._consumer, self._reader, self._producer):
            if client is not None:
                await client.stop()

    # -- the loop --------------------------------------------------------------------------
    async def poll(self, timeout_ms: int = POLL_MS) -> int:
        """Fetch and apply one batch of records; return how many records it held."""
        assert self._consumer is not None, "start() first"
        try:
            batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=MAX_RECORDS)
        except ConsumerStoppedError:
            if self._stopping:
                return 0
            raise
        async with self._lock:
            if self._stopping:
                return 0
            now, clock = time.time(), time.monotonic()
            # records of a partition revoked since the fetch are left to its new owner
            mine = [
                (tp.partition, rs)
                for tp, rs in sorted(batches.items())
                if tp.partition in self.owned
            ]
            count = 0
            for partition, records in mine:
                await self._apply(partition, records, now)
                self._due.setdefault(partition, clock + self.interval)
                count += len(records)
            if clock >= self._next_idle:
                self._next_idle = clock + IDLE_EVERY_S
                for partition in self.stage.partitions():
                    if self.stage.advance_idle_partition(partition, now, self._emitter(partition)):
                        self._due[partition] = clock  # the watermark moved: checkpoint it now
            await self._send_queued()
            due = [p for p, at in self._due.items() if at <= clock]
            if due:
                await self._checkpoint(due)
            return count

    async def _apply(self, partition: int, records: list[Any], now: float) -> None:
        """Apply a partition's records in slices of about ``CHUNK_BYTES`` of values (what a
        slice decodes to is transient memory); what each slice produces goes to the producer
        before the next, so closed windows never pile up (a slice can close thousands)."""
        dlq = self.config.topics.names.dlq
        emit = self._emitter(partition)
        for chunk in _chunks(records, CHUNK_BYTES):
            out = self.stage.process(partition, chunk, now, emit=emit)
            for d in out.dead_letters:
                self._queued.append((dlq, base64_key(d.key_b64), _json(d), None))
            await self._send_queued()

    def _emitter(self, partition: int) -> Callable[[WindowAggregate], None]:
        """What the window stage hands ``partition``'s closed windows to: detection, then the
        queue of records to send (a window is serialized at once, its objects let go)."""
        names, observe = self.config.topics.names, self.detection.observe

        def emit(window: WindowAggregate) -> None:
            key = window.service.encode()
            for breach, history in observe(partition, window):
                headers = [(HISTORY_HEADER, history)]
                self._queued.append((names.breaches, key, _json(breach), headers))
            self._queued.append((names.windows, key, _json(window), None))

        return emit

    async def _send_queued(self) -> None:
        """Hand the queued windows, breaches and dead letters to the producer (durable before
        the next checkpoint)."""
        assert self._producer is not None
        queued, self._queued = self._queued, []
        send = self._producer.send
        for topic, key, value, headers in queued:
            self._sent.append(await send(topic, value, key=key, headers=headers))

    async def _checkpoint(self, partitions: Iterable[int]) -> None:
        """Write the detection states and then the checkpoints of ``partitions`` once their
        outputs are durable, then commit."""
        assert self._producer is not None and self._consumer is not None
        await self._send_queued()
        if self._sent:
            sent, self._sent = self._sent, []
            await asyncio.gather(*sent)
        mine = []
        for partition in partitions:
            self._due.pop(partition, None)
            if partition in self.owned:
                mine.append(partition)
        states = [
            await self._producer.send(self.states.name, value, key=key, partition=partition)
            for partition in mine
            for key, value in self.detection.pending(partition)
        ]
        await asyncio.gather(*states)  # durable before the checkpoints that cover them
        offsets = {}
        for partition in mine:
            blob = self.stage.checkpoint(partition)
            if len(blob) > MAX_CHECKPOINT_BYTES:
                raise RuntimeError(
                    f"window state of partition {partition} is {len(blob)} bytes, over "
                    f"{MAX_CHECKPOINT_BYTES}: raise topics.partitions or shorten windows.length_s"
                )
            # one partition's state at a time: its blob is let go before the next is built
            written = await self._producer.send(
                self.checkpoints.name, blob, key=_pkey(partition), partition=partition
            )
            del blob
            await written
            last = self.stage.last_offset(partition)
            if last >= 0:
                offsets[TopicPartition(self.source, partition)] = last + 1
        if offsets:
            try:
                await self._consumer.commit(offsets)
            except (CommitFailedError, IllegalStateError) as exc:  # a rebalance is under way
                log.info("offset commit skipped (%s); the checkpoints are written", exc)

    # -- assignment ------------------------------------------------------------------------
    async def revoked(self, partitions: Iterable[TopicPartition]) -> None:
        async with self._lock:
            mine = sorted(tp.partition for tp in partitions if tp.topic == self.source)
            if self._stopping or not mine:
                return
            await self._checkpoint([p for p in mine if p in self._due])
            for partition in mine:
                self.owned.discard(partition)
                self.stage.drop(partition)
                self.detection.drop(partition)
            log.info("ingest: revoked %s partitions %s", self.source, mine)

    async def assigned(self, partitions: Iterable[TopicPartition]) -> None:
        async with self._lock:
            assert self._consumer is not None
            mine = sorted(tp.partition for tp in partitions if tp.topic == self.source)
            new = [partition for partition in mine if partition not in self.owned]
            assert self._reader is not None
            states = await self._reader.read(self.states.name, new, last_only=False)
            checkpoints = await self._reader.read(self.checkpoints.name, new, last_only=True)
            restored = []
            for partition in new:
                self.stage.drop(partition)
                self.detection.restore(partition, states[partition])
                blob = checkpoints[partition].get(_pkey(partition))
                if blob is not None:
                    self.stage.restore(partition, blob)
                    last = self.stage.last_offset(partition)
                    self._consumer.seek(TopicPartition(self.source, partition), last + 1)
                    log.info("partition %d: window state restored at offset %d", partition, last)
                    restored.append(partition)
                self.owned.add(partition)
            log.info("ingest: assigned %s partitions %s (restored %s)", self.source, mine, restored)


class _Listener(ConsumerRebalanceListener):
    def __init__(self, ingest: Ingest) -> None:
        self.ingest = ingest

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.ingest.revoked(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.ingest.assigned(assigned)


class IngestService(Service):
    """Runs an :class:`Ingest` loop alongside the Faust app in the worker process."""

    def __init__(self, ingest: Ingest, **kwargs: Any) -> None:
        self.ingest = ingest
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        await self.ingest.start()

    @Service.task
    async def _run(self) -> None:
        while not self.should_stop:
            await self.ingest.poll()

    async def on_stop(self) -> None:
        await self.ingest.stop()


def _chunks(records: list[Any], limit: int) -> Iterator[list[Any]]:
    """``records`` in consecutive slices of at most ``limit`` value bytes (at least one each).

    >>> from perfloop.streams.decoded import RawRecord
    >>> rs = [RawRecord(b"x" * n, None, 0, i) for i, n in enumerate([3, 3, 5, 1])]
    >>> [[r.offset for r in c] for c in _chunks(rs, 6)]
    [[0, 1], [2, 3]]
    >>> [[r.offset for r in c] for c in _chunks(rs, 2)], [len(c) for c in _chunks(rs, 99)]
    ([[0], [1], [2], [3]], [4])
    """
    try:
        ends = list(itertools.accumulate(map(len, map(_VALUE, records))))
    except TypeError:  # a record without a value (None)
        ends = list(itertools.accumulate(len(record.value or b"") for record in records))
    start, n = 0, len(records)
    while start < n:
        below = ends[start - 1] if start else 0  # the bytes before this slice
        stop = max(bisect.bisect_right(ends, below + limit, lo=start), start + 1)
        yield records[start:stop]
        start = stop


def _json(message: WindowAggregate | Breach | DeadLetter) -> bytes:
    return message.model_dump_json().encode()


def _pkey(partition: int) -> bytes:
    return f"p{partition}".encode()


def base64_key(key_b64: str | None) -> bytes | None:
    return base64.b64decode(key_b64) if key_b64 else None


__all__ = ["Ingest", "IngestService", "checkpoint_topic", "ingest_group"]
