"""``perfloop record``: copy every message of some topics into a recording file.

The recorder reads all partitions of the topics (no consumer group, nothing committed) from
``--from`` until it is stopped (SIGINT or SIGTERM: the file is flushed and closed cleanly) or
one of the bounds is reached: ``--max-messages``, ``--until-end`` (the end offsets captured
at the start), ``--idle-timeout`` (seconds without a message). The file format is
:mod:`perfloop.recording`.
"""

from __future__ import annotations

import argparse
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from perfloop.positions import EndTracker, Start, describe_start, partitions_of, seek_to_start
from perfloop.progress import Progress
from perfloop.recording import RecordedMessage, RecordingHeader, RecordingWriter

if TYPE_CHECKING:
    from kafka import KafkaConsumer

SYNC_INTERVAL_S = 5.0


@dataclass(frozen=True)
class RecordBounds:
    """When to stop besides a signal; ``None`` means no such bound."""

    max_messages: int | None = None
    until_end: bool = False
    idle_timeout_s: float | None = None

    def __post_init__(self) -> None:
        if self.max_messages is not None and self.max_messages < 1:
            raise ValueError(f"--max-messages: {self.max_messages} must be at least 1")
        if self.idle_timeout_s is not None and self.idle_timeout_s <= 0:
            raise ValueError(f"--idle-timeout: {self.idle_timeout_s} must be positive")


@dataclass(frozen=True)
class RecordSummary:
    path: Path
    messages: int
    bytes: int
    elapsed_s: float
    stopped_by: str  # "signal", "max-messages", "end", "idle"

    def describe(self) -> str:
        return (
            f"recorded {self.messages:,} messages ({self.bytes / 1e6:,.1f} MB) to {self.path} "
            f"in {self.elapsed_s:.1f} s; stopped by {self.stopped_by}"
        )


def _size(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> int:
    return len(key or b"") + len(value or b"") + sum(len(k) + len(v or b"") for k, v in headers)


def record_topics(
    bootstrap: str,
    topics: list[str],
    path: str | Path,
    start: Start = "earliest",
    bounds: RecordBounds | None = None,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    poll_ms: int = 200,
) -> RecordSummary:
    """Record ``topics`` into ``path`` until ``stop`` is set or a bound is reached."""
    from perfloop.actions.kafka_clients import KafkaConsumer

    if not topics:
        raise ValueError("topics: name at least one topic to record")
    bounds = bounds or RecordBounds()
    stop = stop or threading.Event()
    progress = progress or Progress("recorded", quiet=True)
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
        client_id="perfloop-record", max_partition_fetch_bytes=4 * 1024 * 1024,
    )  # fmt: skip
    try:
        partitions = partitions_of(consumer, topics)
        _, ends = seek_to_start(consumer, partitions, start)
        tracker = EndTracker(ends) if bounds.until_end else None
        counts: dict[str, int] = {}
        for tp in partitions:
            counts[tp.topic] = counts.get(tp.topic, 0) + 1
        header = RecordingHeader(
            topics=list(dict.fromkeys(topics)),
            partitions=counts,
            start=describe_start(start),
            created_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        )
        with RecordingWriter(path, header) as writer:
            stopped_by = _copy(consumer, writer, bounds, stop, progress, tracker, poll_ms)
        progress.finish()
        return RecordSummary(
            Path(path), progress.messages, progress.bytes,
            time.monotonic() - progress.started, stopped_by,
        )  # fmt: skip
    finally:
        consumer.close()


def _copy(
    consumer: KafkaConsumer,
    writer: RecordingWriter,
    bounds: RecordBounds,
    stop: threading.Event,
    progress: Progress,
    tracker: EndTracker | None,
    poll_ms: int,
) -> str:
    """The poll loop; returns what stopped it."""
    last_message = last_sync = time.monotonic()
    limit = bounds.max_messages
    while True:
        if stop.is_set():
            return "signal"
        if tracker is not None and tracker.done(consumer):
            return "end"
        batch = consumer.poll(timeout_ms=poll_ms)
        now = time.monotonic()
        for tp, records in batch.items():
            end = tracker.ends[tp] if tracker is not None else None
            for rec in records:
                if end is not None and rec.offset >= end:
                    break  # written after the start: --until-end leaves it out
                headers = [(k, v) for k, v in rec.headers or []]
                writer.write(
                    RecordedMessage(
                        rec.topic,
                        rec.partition,
                        rec.offset,
                        rec.timestamp,
                        rec.timestamp_type,
                        rec.key,
                        rec.value,
                        headers,
                    )  # fmt: skip
                )
                progress.add(1, _size(rec.key, rec.value, headers))
                if limit is not None and writer.messages >= limit:
                    return "max-messages"
            last_message = now
        if now - last_sync >= SYNC_INTERVAL_S:
            writer.sync()
            last_sync = now
        if bounds.idle_timeout_s is not None and now - last_message >= bounds.idle_timeout_s:
            return "idle"


def run(args: argparse.Namespace) -> int:
    """``perfloop record`` (see :func:`perfloop.cli.build_parser` for the arguments)."""
    from perfloop.positions import parse_start
    from perfloop.schemas.config import load_config
    from perfloop.stopping import stop_on_signals

    summary = record_topics(
        args.broker or load_config().broker.bootstrap,
        args.topics,
        args.output,
        start=parse_start(args.start),
        bounds=RecordBounds(args.max_messages, args.until_end, args.idle_timeout),
        stop=stop_on_signals(),
        progress=Progress("recorded", quiet=args.quiet),
    )
    print(summary.describe())
    return 0
