"""Reading compacted state topics back: the latest value per key of some partitions.

The ingest keeps its window checkpoints and detection states in compacted topics, one
partition of each per ``metrics`` partition; when it is assigned a partition it reads that
partition's records back with a :class:`StateReader`, a consumer of no group that is assigned
only what it reads, and only while it reads.
"""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer, TopicPartition

READ_TIMEOUT_S = 30.0  # the longest a restore waits for the broker without getting a record
# how long the broker may hold the reader's fetch when it has nothing new: a held fetch also
# holds the next request on the connection (an offset lookup waited the default 500 ms)
READER_WAIT_MS = 50


class StateReader:
    """Reads partitions of compacted topics to their end (see :meth:`read`).

    ``start`` connects, ``stop`` disconnects."""

    def __init__(self, bootstrap: str, client_id: str, max_fetch_bytes: int) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=max_fetch_bytes,
            fetch_max_wait_ms=READER_WAIT_MS,
        )

    async def start(self) -> None:
        await self.consumer.start()

    async def stop(self) -> None:
        await self.consumer.stop()

    async def read(
        self, topic: str, partitions: list[int], last_only: bool
    ) -> dict[int, dict[bytes, bytes]]:
        """Per partition of a compacted topic, the latest value per key, read up to the end
        offsets it had when asked (with ``last_only``, of its last record only); a key whose
        latest record is a deletion is left out.

        The partitions are read together, and only those holding records: the reader is
        assigned nothing otherwise, and nothing once done, so that no fetch of it waits on
        the broker (a waiting fetch holds up the next request on its connection)."""
        reader = self.consumer
        tps = [TopicPartition(topic, partition) for partition in partitions]
        tables: dict[int, dict[bytes, bytes | None]] = {partition: {} for partition in partitions}
        if not tps:
            return {}
        ends = await reader.end_offsets(tps)
        begins = await reader.beginning_offsets(tps)
        todo = {tp: ends[tp] for tp in tps if ends[tp] > begins[tp]}
        if todo:
            reader.assign(list(todo))
            for tp, end in todo.items():
                reader.seek(tp, end - 1 if last_only else begins[tp])
            try:
                await self._read_up_to(todo, tables)
            finally:
                reader.unsubscribe()
        return {
            partition: {key: value for key, value in table.items() if value is not None}
            for partition, table in tables.items()
        }

    async def _read_up_to(
        self, ends: dict[TopicPartition, int], tables: dict[int, dict[bytes, bytes | None]]
    ) -> None:
        """Read the assigned ``ends`` partitions into ``tables`` up to those offsets, with a
        stall timeout that restarts at every record."""
        reader = self.consumer
        deadline = time.monotonic() + READ_TIMEOUT_S
        todo = dict(ends)
        while todo:
            if time.monotonic() > deadline:
                where = [
                    f"partition {tp.partition} of {tp.topic} at {await reader.position(tp)} of "
                    f"{end}"
                    for tp, end in todo.items()
                ]
                raise TimeoutError(f"waited {READ_TIMEOUT_S:g}s for a record: {'; '.join(where)}")
            fetched = await reader.getmany(*todo, timeout_ms=500)
            for tp, records in fetched.items():
                table, end = tables[tp.partition], todo[tp]
                for record in records:
                    deadline = time.monotonic() + READ_TIMEOUT_S
                    if record.offset < end and record.key is not None:
                        table[record.key] = record.value
            for tp in [tp for tp, end in todo.items() if await reader.position(tp) >= end]:
                del todo[tp]
