"""Table recovery that keeps the stream partitions still until they are at their committed
offsets, so that no event read as recovery ends is lost.

When Faust has rebuilt the tables from their changelogs (after every start and rebalance),
:meth:`faust.tables.recovery.Recovery.on_recovery_completed` resumes the stream partitions,
seeks them to their committed offsets, then resumes the flow: ``app.flow_control.resume()``
empties every agent's queue, and the consumer delivers again. But recovery resumed the flow
already, to read the changelogs, and it is still on while the stream partitions are resumed
and sought (faust-streaming issue #596). In that time the fetcher delivers stream events
into the agents' queues, and goes on delivering what it fetched before the seek, after the
seek; each delivery moves the partition's read offset past the event. Resuming the flow
then throws the queued events away, and as the partition is read again from the committed
offset, every event below the read offset is taken for one already delivered and dropped.
Those events are never processed: the acknowledged offsets have a hole below them, so the
group's committed offset stops there until the worker restarts.

:class:`TableManager` (the app's ``TableManager`` setting) runs recovery with
:class:`StreamSafeRecovery`, which stops the flow, as a revocation does, before the stream
partitions are resumed. Until Faust resumes the flow after the seek, the consumer delivers
nothing (a fetch that returns meanwhile is dropped and its partitions sought back to their
committed offsets), so the agents' queues hold no stream event when they are emptied, and
the first event delivered after the seek is the one at the committed offset: from there
every event is read in order and processed. (An event that an agent took from its queue
before the seek is no longer processed a second time, out of order, either.)
"""

from __future__ import annotations

import faust
from faust.tables.recovery import Recovery


class StreamSafeRecovery(Recovery):
    """Recovery whose completion delivers no stream event before the seek."""

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        # the consumer's flow and the queues' flow: Faust resumes both once the stream
        # partitions are at their committed offsets; a completion that gives way to a newer
        # rebalance leaves them to that rebalance's recovery
        self.app.consumer.stop_flow()
        self.app.flow_control.suspend()
        await super().on_recovery_completed(generation_id)


class TableManager(faust.tables.TableManager):
    """The app's table manager, with :class:`StreamSafeRecovery` for its recovery."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = StreamSafeRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
