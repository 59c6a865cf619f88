"""Detection where windows close: the ingest's detect stage.

The ingest hands every window it closes to :meth:`DetectStage.observe`, with the ``metrics``
partition the window came from, before the window goes to ``perfloop.windows``. A service's
windows all come from one partition (metrics are keyed by service), so the partition's owner
holds the service's :class:`~perfloop.streams.service_state.ServiceState`: its detector and its
recent windows. Detecting here costs a window little beyond the detector itself; a Faust agent that
read every window back from Kafka cost several times the detection it ran.

State and recovery follow the window checkpoints (see :mod:`perfloop.streams.kafka.ingest`):

- the states a partition's windows changed are written, as one record per service, to the
  compacted topic :func:`detect_state_topic` on the partition's own number, once the breaches their
  windows raised are durable and before the window checkpoint that covers those windows;
- on assignment the partition's states are read back from that topic (the latest record per
  key). A state may be ahead of the checkpoint (a crash between the two); the windows the
  ingest closes again after the restore are then ones the detector has seen, and it ignores
  them, as it ignores any window of a service that is not newer than its last.

Each breach goes out with the windows it was detected on, in the record header
:data:`HISTORY_HEADER` (the service's history, in :mod:`perfloop.streams.history`'s form), so the
diagnose stage needs no state of its own and diagnoses the same however far detection has run
ahead of it.
"""

from __future__ import annotations

from collections.abc import Mapping

from perfloop.schemas.config import PerfloopConfig
from perfloop.schemas.messages import Breach, WindowAggregate
from perfloop.schemas.topics import MAX_STATE_BYTES, TopicSpec, state_topic
from perfloop.streams.service_state import ServiceState

HISTORY_HEADER = "perfloop.history"

Record = tuple[bytes, bytes]  # (key, value)


def detect_state_topic(config: PerfloopConfig) -> TopicSpec:
    """The compacted topic of the services' detection states, partitioned as ``metrics``."""
    return state_topic(
        config.topics,
        role="detect_state",
        name=f"{config.worker.app_id}-detect-state-changelog",
        message="detection state of a service (binary)",
        key="service",
        max_message_bytes=MAX_STATE_BYTES,
    )


class DetectStage:
    """The detection states of the services of the ``metrics`` partitions the ingest owns."""

    def __init__(self, config: PerfloopConfig) -> None:
        self.config = config
        self.keep = config.windows.history_windows
        self._states: dict[int, dict[bytes, ServiceState]] = {}
        self._pending: dict[int, dict[bytes, None]] = {}  # keys to write, in order

    def observe(self, partition: int, window: WindowAggregate) -> list[tuple[Breach, bytes]]:
        """Detect on ``window`` of ``partition``: the breaches it raises, each with the
        history it was detected on (see :data:`HISTORY_HEADER`)."""
        key = window.service.encode()
        states = self._states.setdefault(partition, {})
        state = states.get(key)
        if state is None:
            state = states[key] = ServiceState.load(None, self.config)
        breaches = state.observe(window, self.keep)
        self._pending.setdefault(partition, {})[key] = None
        return [(breach, state.history_blob()) for breach in breaches]

    def pending(self, partition: int) -> list[Record]:
        """The records that bring the partition's state topic up to date: each state changed
        since the last call."""
        states = self._states.get(partition, {})
        return [(key, states[key].dump()) for key in self._pending.pop(partition, {})]

    def restore(self, partition: int, table: Mapping[bytes, bytes]) -> None:
        """Take over ``partition`` from its state topic's latest record per key."""
        self._states[partition] = {
            key: ServiceState.load(table[key], self.config) for key in sorted(table)
        }
        self._pending[partition] = {}

    def drop(self, partition: int) -> None:
        """Forget ``partition`` (revoked: its next owner reads its states back)."""
        for held in (self._states, self._pending):
            held.pop(partition, None)

    def services(self, partition: int) -> list[bytes]:
        return sorted(self._states.get(partition, {}))


__all__ = ["HISTORY_HEADER", "DetectStage", "detect_state_topic"]
