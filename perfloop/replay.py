"""``perfloop replay``: produce a recording back into Kafka.

Into the same topics or renamed ones (``--map metrics=metrics.test``), with the recorded
keys, headers and (when the target has at least as many partitions as the recorded topic,
or with ``--keep-partitions``) partitions, else partitioned by key. Each message's timestamp
is the recorded one, moved by ``--shift`` seconds or so that the first message lands at now
(``--shift-to-now``); ``--shift-values`` moves the ``ts`` of metric values too. Messages are
paced by their recorded timestamps at ``--speed`` (1 = real time, ``max`` = no waiting).

The file is streamed and the bytes waiting for the broker are bounded, so memory stays flat
whatever the file's size. A corrupt line fails the run (``--on-error fail``, after what came
before it was sent) or is reported with its line number and skipped (``--on-error skip``).

>>> parse_topic_map(["metrics=metrics.test", "actions=actions.b"])
{'metrics': 'metrics.test', 'actions': 'actions.b'}
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO

from perfloop.pacing import Pacer, shift_event_times
from perfloop.progress import Progress
from perfloop.recording import RecordedMessage, RecordingError, RecordingReader

if TYPE_CHECKING:
    from kafka import KafkaProducer

MAX_SHOWN_ERRORS = 20


def parse_topic_map(items: Iterable[str]) -> dict[str, str]:
    """``["source=target", ...]`` as a mapping; a malformed item names itself."""
    mapping: dict[str, str] = {}
    for item in items:
        source, sep, target = item.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise ValueError(f"--map: {item!r} is not SOURCE=TARGET")
        mapping[source.strip()] = target.strip()
    return mapping


@dataclass(frozen=True)
class ReplayOptions:
    """How to replay; ``speed=None`` is as fast as possible, ``keep_partitions=None`` auto."""

    topic_map: dict[str, str] = field(default_factory=dict)
    keep_partitions: bool | None = None
    speed: float | None = 1.0
    shift_s: float = 0.0
    shift_to_now: bool = False
    shift_values: bool = False
    on_error: Literal["skip", "fail"] = "fail"
    create_topics: bool = False
    max_in_flight_bytes: int = 16 * 1024 * 1024
    max_in_flight_messages: int = 20_000

    def __post_init__(self) -> None:
        if self.on_error not in ("skip", "fail"):
            raise ValueError(f"--on-error: {self.on_error!r} is not skip or fail")
        if self.shift_to_now and self.shift_s:
            raise ValueError("--shift and --shift-to-now exclude each other")


@dataclass
class ReplaySummary:
    path: Path
    messages: int = 0
    bytes: int = 0
    skipped: int = 0
    failed: int = 0
    first_failure: str = ""
    elapsed_s: float = 0.0
    shift_s: float = 0.0
    targets: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        where = ", ".join(f"{n:,} to {t}" for t, n in self.targets.items()) or "nothing sent"
        text = (
            f"sent {self.messages:,} messages ({self.bytes / 1e6:,.1f} MB) from {self.path} "
            f"in {self.elapsed_s:.2f} s ({where}); timestamps shifted by {self.shift_s:+.3f} s"
        )
        if self.skipped:
            text += f"; {self.skipped:,} corrupt lines skipped"
        if self.failed:
            text += f"; {self.failed:,} messages failed ({self.first_failure})"
        return text


class InFlight:
    """Bounds the bytes and messages handed to the producer but not yet acknowledged."""

    def __init__(self, max_bytes: int, max_messages: int) -> None:
        self.max_bytes = max_bytes
        self.max_messages = max_messages
        self.bytes = 0
        self.messages = 0
        self._cond = threading.Condition()

    def add(self, nbytes: int) -> None:
        with self._cond:
            while self.messages and (
                self.bytes + nbytes > self.max_bytes or self.messages >= self.max_messages
            ):
                self._cond.wait(0.5)
            self.bytes += nbytes
            self.messages += 1

    def done(self, nbytes: int, *_result: object) -> None:
        with self._cond:
            self.bytes -= nbytes
            self.messages -= 1
            self._cond.notify_all()


class _Targets:
    """The target topic of each recorded topic, whether partitions are kept, and creation."""

    def __init__(self, bootstrap: str, options: ReplayOptions, recorded: dict[str, int]):
        from perfloop.actions.kafka_clients import KafkaAdminClient

        self.options = options
        self.recorded = recorded
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="perfloop-replay")
        self.partitions: dict[str, int] = {}
        self._keep: dict[str, bool] = {}

    def target(self, source: str) -> tuple[str, bool, int]:
        """(target topic, keep partitions?, target partition count) for ``source``."""
        name = self.options.topic_map.get(source, source)
        if name not in self.partitions:
            self._prepare(source, name)
        return name, self._keep[name], self.partitions[name]

    def _prepare(self, source: str, name: str) -> None:
        from perfloop.actions.kafka_clients import NewTopic, TopicAlreadyExistsError

        recorded = self.recorded.get(source)
        if name not in set(self.admin.list_topics()):
            if not self.options.create_topics:
                raise ValueError(
                    f"topic: {name!r} does not exist (create it, or pass --create-topics)"
                )
            try:
                self.admin.create_topics([NewTopic(name, recorded or 1, 1)])
            except TopicAlreadyExistsError:
                pass
        (desc,) = self.admin.describe_topics([name])
        count = len(desc["partitions"])
        self.partitions[name] = count
        keep = self.options.keep_partitions
        if keep and recorded is not None and count < recorded:
            raise ValueError(
                f"--keep-partitions: {name!r} has {count} partitions, {source!r} had {recorded}"
            )
        self._keep[name] = (recorded is not None and count >= recorded) if keep is None else keep

    def close(self) -> None:
        self.admin.close()


def replay_file(
    bootstrap: str,
    path: str | Path,
    options: ReplayOptions | None = None,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    errors: TextIO | None = None,
) -> ReplaySummary:
    """Produce the messages of the recording at ``path``; see the module docstring."""
    from perfloop.actions.kafka_clients import KafkaProducer

    options = options or ReplayOptions()
    stop = stop or threading.Event()
    progress = progress or Progress("replayed", quiet=True)
    errors = errors if errors is not None else sys.stderr
    summary = ReplaySummary(Path(path), shift_s=options.shift_s)
    with RecordingReader(path) as reader:
        targets = _Targets(bootstrap, options, reader.header.partitions)
        producer = KafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=5, batch_size=256 * 1024,
            client_id="perfloop-replay",
        )  # fmt: skip
        gate = InFlight(options.max_in_flight_bytes, options.max_in_flight_messages)
        pacer = Pacer(options.speed, sleep=stop.wait)
        started = time.monotonic()
        shift_pending = options.shift_to_now
        try:
            for _, item in reader:
                if stop.is_set():
                    break
                if isinstance(item, RecordingError):
                    if options.on_error == "fail":
                        raise RecordingError(f"{path}: {item}")
                    summary.skipped += 1
                    if summary.skipped <= MAX_SHOWN_ERRORS:
                        print(f"{path}: {item} (skipped)", file=errors)
                    continue
                if shift_pending and item.timestamp >= 0:
                    summary.shift_s = time.time() - item.timestamp / 1000.0
                    shift_pending = False
                pacer.wait(item.timestamp)
                _send(producer, gate, targets, item, options, summary)
                progress.add(1, len(item.value or b"") + len(item.key or b""))
            producer.flush()
            summary.elapsed_s = time.monotonic() - started
        finally:
            producer.close()
            targets.close()
            summary.elapsed_s = summary.elapsed_s or time.monotonic() - started
            summary.bytes = progress.bytes
    progress.finish()
    return summary


def _send(
    producer: KafkaProducer,
    gate: InFlight,
    targets: _Targets,
    msg: RecordedMessage,
    options: ReplayOptions,
    summary: ReplaySummary,
) -> None:
    topic, keep, count = targets.target(msg.topic)
    partition = msg.partition if keep and msg.partition < count else None
    value = msg.value
    if options.shift_values:
        value = shift_event_times(value, summary.shift_s)
    timestamp = None
    if msg.timestamp >= 0:
        timestamp = msg.timestamp + round(summary.shift_s * 1000)
    size = len(value or b"") + len(msg.key or b"") + 64
    gate.add(size)

    def failed(exc: BaseException) -> None:
        summary.failed += 1
        summary.first_failure = summary.first_failure or f"{type(exc).__name__}: {exc}"
        gate.done(size)

    try:
        future = producer.send(
            topic, value=value, key=msg.key, headers=list(msg.headers),
            partition=partition, timestamp_ms=timestamp,
        )  # fmt: skip
    except (ValueError, TypeError) as exc:
        failed(exc)
        return
    future.add_callback(gate.done, size)
    future.add_errback(failed)
    summary.messages += 1
    summary.targets[topic] = summary.targets.get(topic, 0) + 1


def run(args: argparse.Namespace) -> int:
    """``perfloop replay``: exit 1 when some messages could not be delivered."""
    from perfloop.pacing import parse_speed
    from perfloop.schemas.config import load_config
    from perfloop.stopping import stop_on_signals

    options = ReplayOptions(
        topic_map=parse_topic_map(args.map or []),
        keep_partitions=args.keep_partitions,
        speed=parse_speed(args.speed),
        shift_s=args.shift,
        shift_to_now=args.shift_to_now,
        shift_values=args.shift_values,
        on_error=args.on_error,
        create_topics=args.create_topics,
    )
    summary = replay_file(
        args.broker or load_config().broker.bootstrap,
        args.file,
        options,
        stop=stop_on_signals(),
        progress=Progress("replayed", quiet=args.quiet),
    )
    print(summary.describe())
    return 1 if summary.failed else 0
