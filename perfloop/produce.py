"""Producing metrics: the :class:`MetricProducer` API for services and ``perfloop produce``.

Both batch on the client side (see :mod:`perfloop.batching`): points of one series travel as
one columnar message ``{"service", "metric", "labels", "ts": [...], "values": [...]}``, keyed
by service.
"""

from __future__ import annotations

import argparse
import atexit
import json
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TextIO

from pydantic import ValidationError

from perfloop.batching import MetricBatcher
from perfloop.schemas.messages import MetricPoint

#: ``send(topic, key, value)``: hands one message to Kafka (or to a test double).
SendFn = Callable[[str, bytes, bytes], object]


class MetricProducer:
    """Sends metric points to Kafka in columnar batches, keyed by service.

    A batch leaves when its series has ``batch_size`` points or its first point has waited
    ``linger_s`` seconds (a background thread sends lingering batches); ``flush()`` sends
    everything now, ``close()`` flushes and closes, and so does the end of a ``with`` block
    and, as a last resort, the interpreter's exit. Points are validated like
    :class:`perfloop.schemas.messages.MetricPoint`; a bad one raises ``ValueError`` naming the
    field.

    ``send`` replaces the Kafka producer, e.g. with a list's ``append`` in a test:

    >>> sent = []
    >>> with MetricProducer("unused:9092", batch_size=2, linger_s=60,
    ...                     send=lambda topic, key, value: sent.append((topic, key, value))) as p:
    ...     p.record("checkout", "latency_ms", 12.0, ts=1_700_000_000.0)
    ...     p.record("checkout", "latency_ms", 15.0, ts=1_700_000_001.0)
    ...     p.record("checkout", "cache_hits", 3, ts=1_700_000_001.0, labels={"tier": "l1"})
    ...     len(sent)
    1
    >>> [(topic, key, json.loads(value)["values"]) for topic, key, value in sent]
    [('metrics', b'checkout', [12.0, 15.0]), ('metrics', b'checkout', [3.0])]
    >>> json.loads(sent[1][2])["labels"]
    {'tier': 'l1'}
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str = "metrics",
        batch_size: int = 500,
        linger_s: float = 1.0,
        send: SendFn | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.batch_size = batch_size
        self.linger_s = linger_s
        self._batcher = MetricBatcher(batch_size, linger_s)
        self._lock = threading.RLock()
        self._producer: Any = None
        self._send = send or self._kafka_send
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.points = 0
        self.batches = 0
        self.failed = 0
        atexit.register(self.close)

    def _kafka_send(self, topic: str, key: bytes, value: bytes) -> object:
        if self._producer is None:
            from perfloop.actions.kafka_clients import KafkaProducer

            self._producer = KafkaProducer(
                bootstrap_servers=self.bootstrap, acks="all", linger_ms=20,
                client_id="perfloop-metrics",
            )  # fmt: skip
        future = self._producer.send(topic, key=key, value=value)
        future.add_errback(self._failed)
        return future

    def _failed(self, exc: BaseException) -> None:
        self.failed += 1

    def record(
        self,
        service: str,
        metric: str,
        value: float,
        ts: float | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        """Add one point (``ts`` defaults to now, in epoch seconds)."""
        point = MetricPoint(
            service=service, metric=metric, value=float(value),
            ts=time.time() if ts is None else float(ts), labels=labels or {},
        )  # fmt: skip
        self.record_point(point)

    def record_point(self, point: MetricPoint) -> None:
        """Add one point that is already a validated :class:`MetricPoint`."""
        with self._lock:
            if self._closed:
                raise ValueError("MetricProducer: record after close()")
            ready = self._batcher.add(
                point.service, point.metric, point.value, point.ts, dict(point.labels),
                now=time.monotonic(),
            )  # fmt: skip
            self.points += 1
            self._emit(ready)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._linger_loop, name="perfloop-metrics-linger", daemon=True
                )
                self._thread.start()

    def _emit(self, batches: list[dict[str, Any]]) -> None:
        for batch in batches:
            value = json.dumps(batch, separators=(",", ":")).encode()
            self._send(self.topic, batch["service"].encode(), value)
            self.batches += 1

    def _linger_loop(self) -> None:
        interval = min(max(self.linger_s / 4, 0.01), 1.0)
        while not self._stop.wait(interval):
            with self._lock:
                self._emit(self._batcher.due(time.monotonic()))

    def flush(self, timeout_s: float | None = None) -> None:
        """Send every pending batch now and wait until Kafka has them."""
        with self._lock:
            self._emit(self._batcher.drain())
            if self._producer is not None:
                self._producer.flush(timeout=timeout_s)

    def close(self, timeout_s: float | None = None) -> None:
        """Flush, then stop the linger thread and close the Kafka producer."""
        with self._lock:
            if self._closed:
                return
            self.flush(timeout_s)
            self._closed = True
        atexit.unregister(self.close)
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if self._producer is not None:
            self._producer.close(timeout=timeout_s)

    def __enter__(self) -> MetricProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class ProduceSummary:
    points: int = 0
    bad: int = 0
    batches: int = 0
    failed: int = 0

    def describe(self, topic: str) -> str:
        text = f"sent {self.points:,} points in {self.batches:,} batches to {topic}"
        if self.bad:
            text += f"; {self.bad:,} bad lines skipped"
        if self.failed:
            text += f"; {self.failed:,} batches failed"
        return text


def why_invalid(exc: ValidationError) -> str:
    """A one-line reason: the failing fields and what is wrong with them."""
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def produce_lines(
    lines: Iterable[str | bytes],
    producer: MetricProducer,
    errors: TextIO | None = None,
    source: str = "-",
    max_shown: int = 20,
) -> ProduceSummary:
    """Validate each JSON line as a metric point and hand it to ``producer``.

    A bad line is reported as ``SOURCE:LINE: reason`` (the first ``max_shown`` of them),
    skipped and counted.
    """
    errors = errors if errors is not None else sys.stderr
    summary = ProduceSummary()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            point = MetricPoint.model_validate_json(line)
        except ValidationError as exc:
            summary.bad += 1
            if summary.bad <= max_shown:
                print(f"{source}:{number}: {why_invalid(exc)}", file=errors)
            continue
        producer.record_point(point)
        summary.points += 1
    producer.flush()
    summary.batches, summary.failed = producer.batches, producer.failed
    return summary


def run(args: argparse.Namespace) -> int:
    """``perfloop produce``: exit 1 when a line was bad (unless ``--allow-bad``) or lost."""
    from perfloop.schemas.config import load_config

    config = load_config()
    topic = args.topic or config.topics.names.metrics
    producer = MetricProducer(
        args.broker or config.broker.bootstrap, topic, args.batch_size, args.linger
    )
    source = args.file or "-"
    with producer:
        if source == "-":
            summary = produce_lines(sys.stdin.buffer, producer, source="stdin")
        else:
            with open(source, "rb") as lines:
                summary = produce_lines(lines, producer, source=source)
    summary.failed = producer.failed
    print(summary.describe(topic))
    return 1 if summary.failed or (summary.bad and not args.allow_bad) else 0
