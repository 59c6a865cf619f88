"""What the worker's agents need to handle Faust events in batches.

:func:`in_batches` hands an agent's events to its handler in batches (``stream.noack_take``)
and acks a batch only once the handler returns: a batch that fails is never acked, so its
offsets are not committed and the events are read again after a restart or a rebalance.

A Faust table writes a key's change to the changelog partition of the event being processed
(the stream's current event): keys are co-partitioned with the topic that feeds the table.
An agent that handles a batch of events at once has no current event of its own while it
handles them. :func:`writing_to` names the partition for the writes made inside it: the
partition of the event the write comes from. Outside it, a write takes the current event's
partition, as in Faust.

>>> with writing_to(3):
...     _PARTITION.get()
3
>>> _PARTITION.get() is None
True
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import faust

from perfloop.streams.window_stage import dead_letter

BATCH_EVENTS = 512  # events an agent handles together: their messages are awaited once
BATCH_WAIT_S = 0.05  # how long a batch waits to fill: the latency it adds at most
_PARTITION: ContextVar[int | None] = ContextVar("perfloop_table_partition", default=None)


@contextmanager
def writing_to(partition: int) -> Iterator[None]:
    """Table writes inside go to changelog ``partition``."""
    token = _PARTITION.set(partition)
    try:
        yield
    finally:
        _PARTITION.reset(token)


async def in_batches(stream: Any, handle: Callable[[list[Any]], Awaitable[None]]) -> None:
    """Hand the events of ``stream`` to ``handle`` in batches; ack each batch once ``handle``
    has returned."""
    async for events in stream.noack_take(BATCH_EVENTS, within=BATCH_WAIT_S):
        await handle(events)
        for event in events:
            await stream.ack(event)


def dead_letter_json(message: Any, reason: str) -> bytes:
    """The dead letter, as JSON, of a Faust ``message`` that is not what its topic carries."""
    letter = dead_letter(message, message.partition, message.topic, reason, None, time.time())
    return letter.model_dump_json().encode()


class PartitionedTable(faust.Table):
    """A table that writes to the partition :func:`writing_to` names, if any."""

    def partition_for_key(self, key: Any) -> int | None:
        partition = _PARTITION.get()
        if partition is None:
            return super().partition_for_key(key)
        return partition
