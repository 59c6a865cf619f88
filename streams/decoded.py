"""What the decoder reads and writes: raw records in, columns and rejections out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, cast, overload

import numpy as np
import numpy.typing as npt

Labels = tuple[tuple[str, str], ...]


class RecordLike(Protocol):
    """What the decoder reads of a Kafka record (aiokafka's bare records have just these)."""

    @property
    def value(self) -> bytes | None: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def offset(self) -> int: ...


class PartitionedRecord(RecordLike, Protocol):
    """A record that also says its partition (aiokafka's ``ConsumerRecord``, ``RawRecord``)."""

    @property
    def partition(self) -> int: ...


class RawRecord(NamedTuple):
    """A Kafka record reduced to what the decoder needs."""

    value: bytes | None
    key: bytes | None
    partition: int
    offset: int


class SeriesKey(NamedTuple):
    """One series: a service's metric with sorted label pairs."""

    service: str
    metric: str
    labels: Labels


class Sources(Sequence[tuple[int, int]]):
    """The (partition, offset) of each record, read from the records when asked for (most
    batches never ask: only their late or rejected records are looked up). ``partition`` is
    the partition of all the records; None reads each record's own.

    >>> Sources([RawRecord(b"{}", None, 3, 41), RawRecord(b"{}", None, 3, 42)])[1]
    (3, 42)
    """

    __slots__ = ("_records", "_partition")

    def __init__(self, records: Sequence[RecordLike], partition: int | None = None) -> None:
        self._records = records
        self._partition = partition

    def _source(self, record: RecordLike) -> tuple[int, int]:
        partition = self._partition
        if partition is None:
            partition = cast(PartitionedRecord, record).partition
        return partition, record.offset

    def __len__(self) -> int:
        return len(self._records)

    @overload
    def __getitem__(self, index: int) -> tuple[int, int]: ...
    @overload
    def __getitem__(self, index: slice) -> list[tuple[int, int]]: ...
    def __getitem__(self, index: int | slice) -> tuple[int, int] | list[tuple[int, int]]:
        if isinstance(index, slice):
            return [self._source(r) for r in self._records[index]]
        return self._source(self._records[index])


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that failed validation: where it was, why, and how many points it held."""

    index: int
    partition: int
    offset: int
    field: str
    reason: str
    points: int


@dataclass(frozen=True, slots=True)
class DecodedBatch:
    """The good points of a list of records, as columns in record order.

    ``series_idx[i]`` indexes ``series``; ``record_idx[i]`` indexes the input records (and
    ``sources``, their (partition, offset)).
    """

    series: list[SeriesKey]
    series_idx: npt.NDArray[np.int32]
    ts: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]
    record_idx: npt.NDArray[np.int32]
    sources: Sequence[tuple[int, int]]
    rejections: list[Rejection]

    @property
    def points(self) -> int:
        return int(self.ts.size)
