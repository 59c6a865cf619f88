"""What the worker's agents need to handle Faust events in batches.

The agents take their events in batches (``stream.noack_take``) and ack a batch with
:func:`ack_all` only once it is handled: a batch that fails is never acked, so its offsets
are not committed and the events are read again after a restart or a rebalance.

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

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import faust

_PARTITION: ContextVar[int | None] = ContextVar("perfloop_table_partition", default=None)


@contextmanager
def writing_to(partition: int) -> Iterator[None]:
    """Table writes inside go to changelog ``partition``."""
    token = _PARTITION.set(partition)
    try:
        yield
    finally:
        _PARTITION.reset(token)


async def ack_all(stream: Any, events: list[Any]) -> None:
    """Ack the handled ``events`` of ``stream``."""
    for event in events:
        await stream.ack(event)


class PartitionedTable(faust.Table):
    """A table that writes to the partition :func:`writing_to` names, if any."""

    def partition_for_key(self, key: Any) -> int | None:
        partition = _PARTITION.get()
        if partition is None:
            return super().partition_for_key(key)
        return partition
