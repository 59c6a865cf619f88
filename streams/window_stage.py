"""The window stage of one worker: raw metric records in, closed windows and dead letters out.

Pure logic, no Kafka: the ingest (:mod:`perfloop.streams.kafka.ingest`) hands it batches of
records per partition and sends what it returns. Each partition's state (open windows,
watermark, the last offset applied) is checkpointed as one compressed blob; a record at or
below the checkpoint's offset was already applied and is skipped, so replaying from an older
committed offset after a crash neither loses nor double-counts a point.

>>> import json, time
>>> stage = WindowStage(source_topic="metrics")
>>> now = time.time()
>>> good = json.dumps({"service": "api", "metric": "latency_ms", "value": 5, "ts": now}).encode()
>>> out = stage.process(0, [RawRecord(good, b"api", 0, 0), RawRecord(b"{", b"api", 0, 1)], now)
>>> [d.reason for d in out.dead_letters]
['json: malformed (Expecting property name enclosed in double quotes at char 1)']
>>> stage.process(0, [RawRecord(good, b"api", 0, 1)], now).skipped
1
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from perfloop.schemas.config import IngestConfig, WindowsConfig
from perfloop.schemas.messages import DeadLetter, WindowAggregate
from perfloop.streams.decode import MetricDecoder
from perfloop.streams.decoded import RawRecord, RecordLike
from perfloop.streams.windows import Emit, PartitionWindows

CHECKPOINT_VERSION = 2
_HEAD = struct.Struct("<I")
__all__ = ["Counters", "RawRecord", "StageOutput", "WindowStage", "dead_letter"]


@dataclass
class Counters:
    """What one partition has seen since it was first assigned anywhere."""

    records: int = 0
    points: int = 0
    rejected_records: int = 0
    rejected_points: int = 0
    late_records: int = 0
    late_points: int = 0
    windows: int = 0


@dataclass
class StageOutput:
    """What one batch of one partition produced."""

    windows: list[WindowAggregate] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    skipped: int = 0


@dataclass
class _Partition:
    windows: PartitionWindows
    last_offset: int = -1
    counters: Counters = field(default_factory=Counters)


def _counted(counters: Counters, emit: Emit | None) -> Emit | None:
    """``emit``, counting the windows it is handed."""
    if emit is None:
        return None

    def push(window: WindowAggregate) -> None:
        counters.windows += 1
        emit(window)

    return push


def dead_letter(
    record: RecordLike,
    partition: int,
    source_topic: str,
    reason: str,
    field_: str | None,
    now: float,
    points: int = 1,
    kind: Literal["invalid", "late"] = "invalid",
) -> DeadLetter:
    """The dead letter of a rejected record of ``partition``: why, where it was, and its
    original bytes."""
    return DeadLetter(
        kind=kind,
        reason=reason[:4000],
        field=field_[:256] if field_ else None,
        source_topic=source_topic,
        partition=partition,
        offset=record.offset,
        key_b64=base64.b64encode(record.key).decode() if record.key is not None else None,
        value_b64=base64.b64encode(record.value or b"").decode(),
        rejected_at=now,
        points=points,
    )


class WindowStage:
    """Per-partition event-time windows with dead-lettering and offset-exact checkpoints."""

    def __init__(
        self,
        windows: WindowsConfig | None = None,
        ingest: IngestConfig | None = None,
        source_topic: str = "metrics",
    ) -> None:
        self.windows_config = windows or WindowsConfig()
        self.decoder = MetricDecoder(ingest)
        self.source_topic = source_topic
        self._partitions: dict[int, _Partition] = {}

    # -- partitions ------------------------------------------------------------------------
    def partitions(self) -> list[int]:
        return sorted(self._partitions)

    def _get(self, partition: int) -> _Partition:
        state = self._partitions.get(partition)
        if state is None:
            state = self._partitions[partition] = _Partition(PartitionWindows(self.windows_config))
        return state

    def counters(self, partition: int) -> Counters:
        return self._get(partition).counters

    def last_offset(self, partition: int) -> int:
        return self._get(partition).last_offset

    def drop(self, partition: int) -> None:
        """Forget a partition (it was revoked; its checkpoint lives on in Kafka)."""
        self._partitions.pop(partition, None)

    # -- processing ------------------------------------------------------------------------
    def process(
        self, partition: int, records: Sequence[RecordLike], now: float, emit: Emit | None = None
    ) -> StageOutput:
        """Apply one partition's records (in offset order); return windows and dead letters.

        With ``emit``, closed windows go to it one by one as they are built, not into the
        output (see :meth:`PartitionWindows.update`)."""
        state = self._get(partition)
        last = state.last_offset
        if not records:
            return StageOutput()
        # offset order: the records already applied (before a restart) come first
        fresh = records if records[0].offset > last else [r for r in records if r.offset > last]
        out = StageOutput(skipped=len(records) - len(fresh))
        if not fresh:
            return out
        batch = self.decoder.decode(fresh, now=now, partition=partition)
        counters = state.counters
        counters.records += len(fresh)
        for rej in batch.rejections:
            counters.rejected_records += 1
            counters.rejected_points += rej.points
            out.dead_letters.append(
                dead_letter(
                    fresh[rej.index],
                    partition,
                    self.source_topic,
                    rej.reason,
                    rej.field,
                    now,
                    rej.points,
                )
            )
        update = state.windows.update(batch, wall=now, emit=_counted(counters, emit))
        for late in update.late:
            counters.late_records += 1
            out.dead_letters.append(
                dead_letter(
                    fresh[late.index],
                    partition,
                    self.source_topic,
                    # no watermark in the text: it depends on how records were batched
                    f"ts: {late.points} point(s) arrived after their window closed",
                    "ts",
                    now,
                    late.points,
                    kind="late",
                )
            )
        counters.late_points += update.late_points
        counters.points += batch.points
        counters.windows += len(update.closed)
        out.windows = update.closed
        state.last_offset = max(last, fresh[-1].offset)
        return out

    def advance_idle(
        self, now: float, emit: Emit | None = None
    ) -> dict[int, list[WindowAggregate]]:
        """Close windows of partitions idle for the configured timeout (wall clock): the
        partitions that closed any, with their windows (with ``emit``, the windows went to
        it as in :meth:`process`, and the lists are empty)."""
        closed = {}
        for partition in self.partitions():
            windows: list[WindowAggregate] = []
            if self.advance_idle_partition(partition, now, emit or windows.append):
                closed[partition] = windows
        return closed

    def advance_idle_partition(self, partition: int, now: float, emit: Emit) -> int:
        """Close the windows of ``partition`` if it has been idle for the configured timeout;
        they go to ``emit``. How many it closed."""
        state = self._get(partition)
        before = state.counters.windows
        state.windows.advance_idle(now, emit=_counted(state.counters, emit))
        return state.counters.windows - before

    # -- checkpoints -----------------------------------------------------------------------
    def checkpoint(self, partition: int) -> bytes:
        """The partition's whole state, compressed: a small JSON header, then the windows'
        binary form (:meth:`PartitionWindows.to_bytes`)."""
        state = self._get(partition)
        head = {
            "version": CHECKPOINT_VERSION,
            "last_offset": state.last_offset,
            "counters": state.counters.__dict__,
        }
        blob = json.dumps(head, separators=(",", ":")).encode()
        body = _HEAD.pack(len(blob)) + blob + state.windows.to_bytes()
        return zlib.compress(body, 1)

    def restore(self, partition: int, blob: bytes) -> None:
        """Continue a partition from :meth:`checkpoint`'s output; a checkpoint of another
        form raises ValueError naming the version it found."""
        body = zlib.decompress(blob)
        try:
            (size,) = _HEAD.unpack_from(body)
            doc = json.loads(body[_HEAD.size : _HEAD.size + size])
        except (struct.error, ValueError):  # not a header of this form
            size, doc = 0, None
        version = doc.get("version") if isinstance(doc, dict) else None
        if version != CHECKPOINT_VERSION:
            found = f"of version {version!r}" if version is not None else f"starting {body[:8]!r}"
            raise ValueError(
                f"version: a window checkpoint {found} is not of version {CHECKPOINT_VERSION}"
            )
        self._partitions[partition] = _Partition(
            windows=PartitionWindows.from_bytes(body[_HEAD.size + size :]),
            last_offset=int(doc["last_offset"]),
            counters=Counters(**doc["counters"]),
        )
