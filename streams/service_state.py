"""A service's detection state: its detector and its recent windows.

One record a service, keyed by the service's name (see :mod:`perfloop.streams.detect_stage`):
:data:`MAGIC`, the length of the detector's JSON (little-endian uint32), that JSON, then the
service's :class:`~perfloop.streams.history.History`: one record, not one for the detector and one
for the history.

Earlier workers kept the two apart: the detector's JSON under the service's name and the
history under ``h:<service>``. :meth:`ServiceState.read` reads that layout too, and
:meth:`ServiceState.records`, the first time it stores the service's one record, also deletes
the ``h:`` record. The layout is known here only.

>>> from perfloop.schemas.config import PerfloopConfig
>>> state = ServiceState.load(None, None, PerfloopConfig())
>>> record = state.dump()
>>> record[:2], history_in(record), ServiceState.load(record, None, PerfloopConfig()).windows()
(b'S\\x01', b'H\\x01', [])
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping

from perfloop.schemas.config import PerfloopConfig
from perfloop.schemas.messages import Breach, WindowAggregate
from perfloop.streams.detect import Detector
from perfloop.streams.history import History
from perfloop.streams.history import decode as decode_history

MAGIC = b"S\x01"
LEGACY_HISTORY = b"h:"  # the key prefix of a history in the two-record layout
_SIZE = struct.Struct("<I")
_HEAD = len(MAGIC) + _SIZE.size


Table = Mapping[bytes, bytes]


def history_in(record: bytes) -> bytes:
    """The history part of a record in the one-record layout."""
    (size,) = _SIZE.unpack_from(record, len(MAGIC))
    return record[_HEAD + size :]


class ServiceState:
    """One service's detector and recent windows.

    A state holds its parsed detector, and either the record it was loaded from or last
    dumped to, or its parsed history: the history is parsed from the record only when a
    window is added (the record is let go then), and let go again by :meth:`dump`, so a state
    never holds its history twice."""

    __slots__ = ("detector", "record", "legacy", "_history")

    def __init__(
        self, detector: Detector, record: bytes | None, history: History | None, legacy: bool
    ) -> None:
        self.detector = detector
        self.record = record
        self.legacy = legacy  # loaded from the two-record layout: its h: record is to go
        self._history = history

    @classmethod
    def load(
        cls, record: bytes | None, legacy_history: bytes | None, config: PerfloopConfig
    ) -> ServiceState:
        """The state of a table ``record`` (either layout; ``legacy_history`` is the h: record
        of the two-record layout, read only when ``record`` is not in the one-record one)."""
        if record is not None and record.startswith(MAGIC):
            (size,) = _SIZE.unpack_from(record, len(MAGIC))
            data = json.loads(record[_HEAD : _HEAD + size])
            return cls(Detector.from_json(data, config.detection), record, None, False)
        detector = (
            Detector.from_json(json.loads(record), config.detection)
            if record
            else Detector(config.detection)
        )
        return cls(detector, None, History.load(legacy_history), legacy_history is not None)

    @classmethod
    def read(cls, table: Table, key: bytes, config: PerfloopConfig) -> ServiceState:
        """The state the table holds for service ``key`` (either layout)."""
        record = table.get(key)
        one_record = record is not None and record.startswith(MAGIC)
        return cls.load(record, None if one_record else table.get(LEGACY_HISTORY + key), config)

    def records(self, key: bytes) -> list[tuple[bytes, bytes | None]]:
        """The records that store the state as service ``key``'s one record: that record
        (and, if the state was read from the two-record layout, ``None`` for its ``h:``
        record, which is to be deleted)."""
        out: list[tuple[bytes, bytes | None]] = [(key, self.dump())]
        if self.legacy:
            out.append((LEGACY_HISTORY + key, None))
            self.legacy = False
        return out

    @property
    def history(self) -> History:
        if self._history is None:
            assert self.record is not None  # a state has a record or a parsed history
            self._history = History.load(history_in(self.record))
            self.record = None  # the history is a copy: let the record go until the next dump
        return self._history

    def observe(self, window: WindowAggregate, keep: int) -> list[Breach]:
        """Detect on ``window`` and add it to the history (once, if it is new)."""
        events = self.detector.observe(window)
        latest = self.history.latest
        if latest is None or window.start > latest:
            self.history.append(window, keep)
        return [e for e in events if isinstance(e, Breach)]

    def history_blob(self) -> bytes:
        """The history as :mod:`perfloop.streams.history` stores it (a breach's snapshot)."""
        return self.history.blob

    def dump(self) -> bytes:
        """The state as one record; the state then holds that record, not its history."""
        detector = json.dumps(self.detector.to_json(), separators=(",", ":")).encode()
        self.record = MAGIC + _SIZE.pack(len(detector)) + detector + self.history.blob
        self._history = None
        return self.record

    def windows(self) -> list[WindowAggregate]:
        return decode_history(self.history.blob)
