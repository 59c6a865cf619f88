"""Bare records for the ingest's consumer: aiokafka's record objects without a
``ConsumerRecord`` each.

For every record it hands out, aiokafka builds a ``ConsumerRecord`` (eleven fields, the
header tuple, the key and value sizes) from the record object it parsed the fetch into. The
ingest reads only a record's value, key and offset, which the parsed record object already
has; for single-point messages, building the ``ConsumerRecord`` is about a third of what
``getmany`` costs a record.

:func:`use_bare_records` makes one consumer hand out the parsed record objects themselves
(aiokafka's ``DefaultRecord``, which has ``offset``, ``key``, ``value``, ``timestamp`` and
``headers``). Everything else about the fetch is aiokafka's own: positions, CRC checks,
control batches, aborted transactions, compacted gaps. It relies on aiokafka internals (the
fetcher's buffer of fetched partitions and the per-record hook of its partition records),
so it checks that they are as expected and otherwise leaves the consumer as it is: records
are then full ``ConsumerRecord`` objects, which the ingest reads the same way. Other
consumers in the process are not touched.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.consumer import fetcher

log = logging.getLogger("perfloop.ingest")


def _bare(tp: Any, record: Any) -> Any:
    """Stands for ``PartitionRecords._consumer_record(tp, record)``: the record as parsed."""
    return record


class _BareFetches(OrderedDict[Any, Any]):
    """The fetcher's buffer of fetched partitions, making each new fetch hand out bare
    records. A fetch is stored here before any of its records is read."""

    def __setitem__(self, tp: Any, result: Any) -> None:
        records = getattr(result, "_partition_records", None)
        if records is not None:
            records._consumer_record = _bare
        super().__setitem__(tp, result)


def use_bare_records(consumer: AIOKafkaConsumer) -> bool:
    """Make the started ``consumer`` return bare records from ``getmany``; True when it
    does, False (with a warning) when this aiokafka's internals are not the expected ones."""
    fetch = getattr(consumer, "_fetcher", None)
    buffer = getattr(fetch, "_records", None)
    expected = (
        type(fetch) is fetcher.Fetcher
        and type(buffer) is OrderedDict
        and not buffer
        and "_partition_records" in fetcher.FetchResult.getall.__code__.co_names
        and "_consumer_record" in fetcher.PartitionRecords._unpack_records.__code__.co_names
    )
    if not expected:
        log.warning("this aiokafka's fetcher is not the expected one: records stay full")
        return False
    fetch._records = _BareFetches()  # type: ignore[union-attr]
    return True
