"""Where a reader of topics starts and where it ends: ``--from`` and "the end at start".

``--from`` is ``earliest``, ``latest``, an ISO 8601 time (without a zone it is UTC) or epoch
seconds; a time becomes, per partition, the first offset at or after it (Kafka's
``offsets_for_times``).

>>> parse_start("earliest"), parse_start("end")
('earliest', 'latest')
>>> parse_start("1700000000.5")
1700000000500
>>> parse_start("2023-11-14T22:13:20Z")
1700000000000
>>> parse_start("yesterday")
Traceback (most recent call last):
...
ValueError: --from: 'yesterday' is not earliest, latest, an ISO time or epoch seconds
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

Start = str | int  # "earliest", "latest" or epoch milliseconds


def parse_start(text: str) -> Start:
    """``earliest``/``beginning``, ``latest``/``end``, or a time as epoch milliseconds."""
    word = text.strip().lower()
    if word in ("earliest", "beginning"):
        return "earliest"
    if word in ("latest", "end"):
        return "latest"
    try:
        seconds = float(word)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise ValueError(
                f"--from: {text!r} is not earliest, latest, an ISO time or epoch seconds"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = moment.timestamp()
    if seconds < 0:
        raise ValueError(f"--from: {text!r} is before 1970")
    return round(seconds * 1000)


def describe_start(start: Start) -> str:
    """``start`` as text for headers and messages (a time in ISO 8601, UTC)."""
    if isinstance(start, str):
        return start
    return datetime.fromtimestamp(start / 1000, UTC).isoformat().replace("+00:00", "Z")


def partitions_of(consumer: KafkaConsumer, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of ``topics``; a topic that does not exist is an error."""
    from perfloop.actions.kafka_clients import TopicPartition

    found: list[TopicPartition] = []
    for topic in topics:
        ids = consumer.partitions_for_topic(topic)
        if not ids:
            raise ValueError(f"topic: {topic!r} does not exist on the broker")
        found.extend(TopicPartition(topic, p) for p in sorted(ids))
    return found


def seek_to_start(
    consumer: KafkaConsumer, partitions: list[TopicPartition], start: Start
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """Assign ``partitions`` to ``consumer`` and seek each to ``start``.

    Returns the start offsets and the end offsets (the next offset to be written) now.
    """
    consumer.assign(partitions)
    ends: dict[TopicPartition, int] = consumer.end_offsets(partitions)
    if start == "earliest":
        offsets: dict[TopicPartition, int] = consumer.beginning_offsets(partitions)
    elif start == "latest":
        offsets = dict(ends)
    else:
        found = consumer.offsets_for_times({tp: int(start) for tp in partitions})
        offsets = {tp: ends[tp] if found.get(tp) is None else found[tp].offset for tp in partitions}
    for tp, offset in offsets.items():
        consumer.seek(tp, offset)
    return offsets, ends


class EndTracker:
    """Knows when every partition has reached the end offset captured at the start."""

    def __init__(self, ends: dict[TopicPartition, int]) -> None:
        self.ends = ends
        self.pending = set(ends)

    def done(self, consumer: KafkaConsumer) -> bool:
        """True once the consumer's position is at or past the end on every partition.

        A partition that has reached its end is paused, so nothing later is fetched.
        """
        for tp in list(self.pending):
            if consumer.position(tp) >= self.ends[tp]:
                self.pending.discard(tp)
                consumer.pause(tp)
        return not self.pending
