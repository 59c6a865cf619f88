"""``perfloop tail``: print the messages of a topic as they arrive.

A topic with a role in the catalog (under the configured names) prints one compact line per
message (:mod:`perfloop.formats`); any other topic prints the raw values; ``--json`` prints
the raw values of any topic, one per line. ``--no-follow`` stops at the end offsets captured
at the start; ``--max`` after that many messages.
"""

from __future__ import annotations

import argparse
import threading
from dataclasses import dataclass
from datetime import tzinfo
from typing import BinaryIO

from perfloop.formats import format_value, raw_text
from perfloop.positions import EndTracker, Start, partitions_of, seek_to_start


@dataclass(frozen=True)
class TailOptions:
    start: Start = "latest"
    max_messages: int | None = None
    follow: bool = True
    as_json: bool = False
    role: str | None = None
    tz: tzinfo | None = None

    def __post_init__(self) -> None:
        if self.max_messages is not None and self.max_messages < 1:
            raise ValueError(f"--max: {self.max_messages} must be at least 1")


def render(value: bytes | None, options: TailOptions) -> bytes:
    """One output line (with its newline) for a message value."""
    if options.as_json:
        return (value if value is not None else b"null") + b"\n"
    if options.role is None:
        return raw_text(value).encode() + b"\n"
    return format_value(options.role, value, options.tz).encode() + b"\n"


def tail_topic(
    bootstrap: str,
    topic: str,
    out: BinaryIO,
    options: TailOptions | None = None,
    stop: threading.Event | None = None,
    poll_ms: int = 200,
) -> int:
    """Print ``topic``'s messages to ``out``; return how many were printed."""
    from perfloop.actions.kafka_clients import KafkaConsumer

    options = options or TailOptions()
    stop = stop or threading.Event()
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
        client_id="perfloop-tail",
    )  # fmt: skip
    printed = 0
    try:
        partitions = partitions_of(consumer, [topic])
        _, ends = seek_to_start(consumer, partitions, options.start)
        tracker = None if options.follow else EndTracker(ends)
        while not stop.is_set():
            if tracker is not None and tracker.done(consumer):
                break
            batch = consumer.poll(timeout_ms=poll_ms)
            for tp, records in batch.items():
                end = tracker.ends[tp] if tracker is not None else None
                for rec in records:
                    if end is not None and rec.offset >= end:
                        break
                    out.write(render(rec.value, options))
                    printed += 1
                    if options.max_messages is not None and printed >= options.max_messages:
                        out.flush()
                        return printed
            out.flush()
        return printed
    finally:
        consumer.close()


def run(args: argparse.Namespace) -> int:
    """``perfloop tail``: ``--from`` defaults to latest when following, else earliest."""
    import sys

    from perfloop.formats import roles_by_topic
    from perfloop.positions import parse_start
    from perfloop.schemas.config import load_config
    from perfloop.stopping import stop_on_signals

    config = load_config()
    start = args.start or ("latest" if args.follow else "earliest")
    options = TailOptions(
        start=parse_start(start),
        max_messages=args.max,
        follow=args.follow,
        as_json=args.json,
        role=roles_by_topic(config.topics.names).get(args.topic),
    )
    try:
        tail_topic(
            args.broker or config.broker.bootstrap, args.topic, sys.stdout.buffer,
            options, stop=stop_on_signals(),
        )  # fmt: skip
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (| head): not an error
    return 0
