"""Incidents: one per (service, area) from the first breach until resolved or escalated.

This module holds the data and its JSON form; :mod:`streams.loop` moves incidents through
their states. ``ServiceBook`` is everything the loop keeps for one service (its open
incidents and its recent windows' observations) — one value in the worker's loop table.

>>> book = ServiceBook("checkout")
>>> ServiceBook.loads(book.dumps()).service
'checkout'
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from streams.verify import WindowObservation

# The book is stored again after every window of its service, so it keeps only what
# verification needs: the windows around the latest remedy (breach windows are copied into
# the incident as they pass).
RECENT_WINDOWS = 24
CLOSED_REMEMBERED = 200


@dataclass
class AttemptRecord:
    """One remedy tried in an incident, and what became of it."""

    attempt: int
    action_id: str
    cause: str
    remedy: str
    params: dict[str, Any]
    issued_at: float
    dry_run: bool = False
    command: dict[str, Any] = field(default_factory=dict)
    result: str | None = None
    result_detail: str = ""
    applied_at: float | None = None
    verdict: str | None = None
    verification_id: str | None = None

    @property
    def outcome(self) -> str | None:
        """The attempt's outcome for the planner: its verdict, or the executor's failure."""
        if self.verdict is not None:
            return self.verdict
        if self.result in ("failed", "rejected", "expired"):
            return self.result
        return None


@dataclass
class Incident:
    """A (service, area) problem perfloop is working on."""

    incident_id: str
    service: str
    area: str
    signal: str
    state: str
    first_window_start: float
    window_end: float
    seq: int = 0
    breaches: list[dict[str, Any]] = field(default_factory=list)
    diagnoses: list[dict[str, Any]] = field(default_factory=list)
    probabilities: dict[str, float] = field(default_factory=dict)
    baseline: list[WindowObservation] = field(default_factory=list)
    attempts: list[AttemptRecord] = field(default_factory=list)
    executor_failures: int = 0
    waiting: str | None = None

    @property
    def current(self) -> AttemptRecord | None:
        return self.attempts[-1] if self.attempts else None

    def summary(self) -> dict[str, Any]:
        """Everything a person needs: the breach, each diagnosis, each remedy and verdict."""
        return {
            "breach": self.breaches[0] if self.breaches else None,
            "breaches": len(self.breaches),
            "diagnoses": self.diagnoses,
            "remedies": [
                {
                    "attempt": a.attempt,
                    "action_id": a.action_id,
                    "cause": a.cause,
                    "remedy": a.remedy,
                    "params": a.params,
                    "result": a.result,
                    "result_detail": a.result_detail,
                    "verdict": a.verdict,
                }
                for a in self.attempts
            ],
        }

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["baseline"] = [o.to_json() for o in self.baseline]
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Incident:
        doc = dict(doc)
        doc["baseline"] = [WindowObservation.from_json(o) for o in doc["baseline"]]
        doc["attempts"] = [AttemptRecord(**a) for a in doc["attempts"]]
        return cls(**doc)


@dataclass
class RecentWindow:
    """One closed window of the service, reduced to what verification needs."""

    start: float
    end: float
    observations: dict[str, WindowObservation]

    def to_json(self) -> list[Any]:
        return [self.start, self.end, {k: o.to_json() for k, o in self.observations.items()}]

    @classmethod
    def from_json(cls, data: list[Any]) -> RecentWindow:
        start, end, obs = data
        return cls(start, end, {k: WindowObservation.from_json(o) for k, o in obs.items()})


@dataclass
class ServiceBook:
    """The loop's state for one service."""

    service: str
    incidents: dict[str, Incident] = field(default_factory=dict)  # area -> open incident
    recent: list[RecentWindow] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)  # recently closed incident ids
    pending_diagnoses: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending_results: dict[str, dict[str, Any]] = field(default_factory=dict)

    def hold_result(self, action_id: str, result: dict[str, Any]) -> None:
        """Keep a result that arrived before its command was issued (bounded)."""
        self.pending_results[action_id] = result
        while len(self.pending_results) > CLOSED_REMEMBERED:
            self.pending_results.pop(next(iter(self.pending_results)))

    def add_window(self, window: RecentWindow) -> bool:
        """Keep ``window`` (in start order, once); False when it was already known."""
        if any(w.start == window.start for w in self.recent):
            return False
        self.recent.append(window)
        self.recent.sort(key=lambda w: w.start)
        del self.recent[:-RECENT_WINDOWS]
        return True

    def fill_baseline(self, inc: Incident) -> None:
        """Copy the breach windows' observations into the incident while they are known."""
        have = {o.start for o in inc.baseline}
        for w in self.recent:
            if inc.first_window_start <= w.start < inc.window_end and w.start not in have:
                obs = w.observations.get(inc.signal)
                if obs is not None:
                    inc.baseline.append(obs)
        inc.baseline.sort(key=lambda o: o.start)

    def baseline_for(self, inc: Incident, att: AttemptRecord) -> list[WindowObservation]:
        """What an attempt is judged against: the windows that breached for the first attempt;
        for a later one, as many windows as breached, just before it was issued - so a remedy
        that does nothing after a partial fix is ``unchanged``, not ``improved`` or
        ``resolved`` on the strength of an earlier remedy's work."""
        self.fill_baseline(inc)
        if att.attempt == 1 or not inc.baseline:
            return inc.baseline
        before = [
            w.observations[inc.signal]
            for w in self.recent
            if w.end <= att.issued_at and inc.signal in w.observations
        ]
        return before[-len(inc.baseline) :] or inc.baseline

    def close(self, area: str) -> None:
        incident = self.incidents.pop(area)
        self.closed = [*self.closed, incident.incident_id][-CLOSED_REMEMBERED:]

    def dumps(self) -> bytes:
        doc = {
            "service": self.service,
            "incidents": {a: i.to_json() for a, i in self.incidents.items()},
            "recent": [w.to_json() for w in self.recent],
            "closed": self.closed,
            "pending_diagnoses": self.pending_diagnoses,
            "pending_results": self.pending_results,
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def loads(cls, blob: bytes) -> ServiceBook:
        doc = json.loads(blob)
        return cls(
            service=doc["service"],
            incidents={a: Incident.from_json(i) for a, i in doc["incidents"].items()},
            recent=[RecentWindow.from_json(w) for w in doc["recent"]],
            closed=list(doc["closed"]),
            pending_diagnoses=dict(doc["pending_diagnoses"]),
            pending_results=dict(doc.get("pending_results", {})),
        )
