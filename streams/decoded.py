"""What the decoder reads and writes: raw records in, columns and rejections out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

Labels = tuple[tuple[str, str], ...]


class RecordLike(Protocol):
    """What the decoder reads of a Kafka record."""

    @property
    def value(self) -> bytes | None: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...


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
    sources: list[tuple[int, int]]
    rejections: list[Rejection]

    @property
    def points(self) -> int:
        return int(self.ts.size)
