"""A service's detection state: its detector and its recent windows.

One record a service, keyed by the service's name (see :mod:`perfloop.streams.detect_stage`):
:data:`MAGIC`, the length of the detector's JSON (little-endian uint32), that JSON, then the
service's :class:`~perfloop.streams.history.History`. The layout is known here only.

>>> from perfloop.schemas.config import PerfloopConfig
>>> state = ServiceState.load(None, PerfloopConfig())
>>> record = state.dump()
>>> record[:2], history_in(record), ServiceState.load(record, PerfloopConfig()).windows()
(b'S\\x01', b'H\\x01', [])
>>> ServiceState.load(b'{"version": 1}', PerfloopConfig())
Traceback (most recent call last):
...
ValueError: detection state: a record starting b'{"' is not one of b'S\\x01'
"""

from __future__ import annotations

import json
import struct

from perfloop.schemas.config import PerfloopConfig
from perfloop.schemas.messages import Breach, WindowAggregate
from perfloop.streams.detect import Detector
from perfloop.streams.history import History
from perfloop.streams.history import decode as decode_history

MAGIC = b"S\x01"
_SIZE = struct.Struct("<I")
_HEAD = len(MAGIC) + _SIZE.size


def history_in(record: bytes) -> bytes:
    """The history part of a record."""
    (size,) = _SIZE.unpack_from(record, len(MAGIC))
    return record[_HEAD + size :]


class ServiceState:
    """One service's detector and recent windows.

    A state holds its parsed detector, and either the record it was loaded from or last
    dumped to, or its parsed history: the history is parsed from the record only when a
    window is added (the record is let go then), and let go again by :meth:`dump`, so a state
    never holds its history twice."""

    __slots__ = ("detector", "record", "_history")

    def __init__(self, detector: Detector, record: bytes | None, history: History | None) -> None:
        self.detector = detector
        self.record = record
        self._history = history

    @classmethod
    def load(cls, record: bytes | None, config: PerfloopConfig) -> ServiceState:
        """The state a table ``record`` holds (None: a service not seen yet); a record in
        another layout raises ValueError naming how it starts."""
        if record is None:
            return cls(Detector(config.detection), None, History.load(None))
        if not record.startswith(MAGIC):
            raise ValueError(
                f"detection state: a record starting {record[:2]!r} is not one of {MAGIC!r}"
            )
        (size,) = _SIZE.unpack_from(record, len(MAGIC))
        data = json.loads(record[_HEAD : _HEAD + size])
        return cls(Detector.from_json(data, config.detection), record, None)

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
