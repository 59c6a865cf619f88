"""The diagnose stage: breaches in, diagnoses out; labels in, models learn.

Its Faust agents are :mod:`perfloop.streams.kafka.diagnose_agents`.

``DiagnoseStage`` is the pure part: it owns the worker's
:class:`~perfloop.models.diagnoser.Diagnoser`, remembers the features each recent incident was
diagnosed on (per service, bounded), learns a label once per incident, and checkpoints the models to
the worker's state folder after every label so a restarted worker (even after ``kill -9``) predicts
exactly as before and keeps learning from there.

Models are per worker process: each learns from the labels of the services whose partitions
it owns (a label is keyed by service, like everything else).

>>> import tempfile, random
>>> from perfloop.models.synthetic import synthetic_history
>>> from perfloop.schemas.config import DiagnosisConfig
>>> stage = DiagnoseStage(DiagnosisConfig(min_labels=0), tempfile.mkdtemp())
>>> history = synthetic_history("memory", "cache", random.Random(1))
>>> breach = Breach(breach_id="svc:memory:1", service="svc", area="memory",
...     signal="memory_bytes.max", observed=4e10, threshold=3.36e10, direction="above",
...     window_start=history[-1].start, window_end=history[-1].end,
...     first_window_start=history[-2].start, windows=2)
>>> diagnosis = stage.diagnose(breach, history)
>>> stage.learn(Label(incident_id="svc:memory:1", service="svc", area="memory",
...     cause="workers", ts=history[-1].end))
True
>>> stage.learn(Label(incident_id="svc:memory:1", service="svc", area="memory",
...     cause="workers", ts=history[-1].end))
False
>>> DiagnoseStage(DiagnosisConfig(min_labels=0), stage.state_dir).diagnoser.labels_seen("memory")
1
"""

from __future__ import annotations

import logging
import os
import struct
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from perfloop.models.diagnoser import Diagnoser
from perfloop.schemas.config import DetectionConfig, DiagnosisConfig
from perfloop.schemas.messages import Breach, Diagnosis, Label, WindowAggregate
from perfloop.streams.detect_stage import HISTORY_HEADER
from perfloop.streams.history import decode as decode_history

log = logging.getLogger("perfloop.diagnose")

MODEL_FILE = "diagnoser.bin"
REMEMBER_INCIDENTS = 10_000


class DiagnoseStage:
    """Diagnoses breaches and learns labels, with the models checkpointed to ``state_dir``."""

    def __init__(
        self,
        config: DiagnosisConfig,
        state_dir: str | Path,
        detection: DetectionConfig | None = None,
    ) -> None:
        self.config = config
        self.detection = detection or DetectionConfig()
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / MODEL_FILE
        if path.exists():
            # our own checkpoint, written by this worker: trusted bytes
            self.diagnoser = Diagnoser.loads(path.read_bytes())
            log.info("diagnosis models restored from %s", path)
        else:
            self.diagnoser = Diagnoser(config)
        self._features: OrderedDict[str, tuple[str, dict[str, float]]] = OrderedDict()
        self.unknown_labels = 0
        self.without_history = 0  # breaches diagnosed without the windows they were seen on

    def diagnose(
        self, breach: Breach, history: Sequence[WindowAggregate], incident_id: str | None = None
    ) -> Diagnosis:
        """Diagnose ``breach`` from the windows up to and including the breach window."""
        upto = [w for w in history if w.end <= breach.window_end]
        incident = incident_id or breach.breach_id
        detection = self.detection.for_service(breach.service)
        diagnosis = self.diagnoser.diagnose(breach, upto, incident, detection)
        self.remember(incident, breach.area, diagnosis.features)
        return diagnosis

    def remember(self, incident_id: str, area: str, features: dict[str, float]) -> None:
        """Keep the features an incident was diagnosed on, for its label later."""
        self._features[incident_id] = (area, dict(features))
        self._features.move_to_end(incident_id)
        while len(self._features) > REMEMBER_INCIDENTS:
            self._features.popitem(last=False)

    def features_of(self, incident_id: str) -> tuple[str, dict[str, float]] | None:
        return self._features.get(incident_id)

    def learn(self, label: Label, features: dict[str, float] | None = None) -> bool:
        """Learn ``label`` once per incident; True when the models changed."""
        known = self._features.get(label.incident_id)
        if features is None:
            if known is None:
                self.unknown_labels += 1
                log.warning("label for unknown incident %s ignored", label.incident_id)
                return False
            features = known[1]
        learned = self.diagnoser.learn_label(label.incident_id, label.area, features, label.cause)
        if learned:
            self.save()
        return learned

    def save(self) -> None:
        """Write the models atomically (a crash leaves the old or the new file, never half)."""
        path = self.state_dir / MODEL_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(self.diagnoser.dumps())
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)


def breach_history(
    headers: Any, memo: dict[bytes, WindowAggregate] | None = None
) -> list[WindowAggregate] | None:
    """The windows a breach record's :data:`~perfloop.streams.detect_stage.HISTORY_HEADER` holds, or
    None without that header; a header that is not a history raises ValueError naming it.
    ``memo`` is :func:`perfloop.streams.history.decode`'s.

    >>> breach_history([("other", b"x")]) is None, breach_history({HISTORY_HEADER: b"H\\x01"})
    (True, [])
    """
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    for name, value in pairs:
        if name == HISTORY_HEADER:
            try:
                return decode_history(value, memo)
            except (ValueError, TypeError, KeyError, struct.error) as exc:
                raise ValueError(
                    f"header {HISTORY_HEADER}: not a history of windows ({exc})"
                ) from exc
    return None
