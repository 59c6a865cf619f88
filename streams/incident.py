"""Incidents: one per (service, area) from the first breach until resolved or escalated.

This module holds the data and its JSON form; :mod:`perfloop.streams.loop` moves incidents through
their states. ``ServiceBook`` is everything the loop keeps for one service (its open
incidents and the index of its archived windows) — one value in the worker's loop table.

The observations of each closed window go once into a :class:`WindowArchive` (the worker's
``loop-windows`` table), keyed by service and window start, and stay there for a span of
event time (``verification.retained_windows`` window lengths behind the newest window), not
for a number of arrivals. The loop reads windows from several topics whose records reach it
in an order that depends on how fast each stage ran: a replay at full speed can deliver a
window long before the breach it caused or the diagnosis of that breach. As long as those
lag behind the windows by less than the retained span, the breach windows and the windows
after a remedy are still there, and a replay gives the same verdicts as the live run.

>>> book = ServiceBook("checkout")
>>> ServiceBook.loads(book.dumps()).service
'checkout'
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterator, MutableMapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from perfloop.streams.verify import WindowObservation

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
    overdue_at: float | None = None  # the end of the first window past the result deadline

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

    def to_bytes(self) -> bytes:
        """A compact form: a line of JSON (times, and each signal's statistic, sample size and
        counts), then every sample as little-endian float64, in the signals' order.

        >>> w = RecentWindow(0.0, 10.0, {"latency_ms.p95": WindowObservation(0.0, 7.5, [5.0])})
        >>> RecentWindow.from_bytes(w.to_bytes()) == w
        True
        """
        signals = [
            [name, o.stat, len(o.sample), list(o.counts) if o.counts else None]
            for name, o in self.observations.items()
        ]
        head = json.dumps([self.start, self.end, signals], separators=(",", ":")).encode()
        samples = [x for o in self.observations.values() for x in o.sample]
        return head + b"\n" + np.asarray(samples, dtype="<f8").tobytes()

    @classmethod
    def from_bytes(cls, blob: bytes) -> RecentWindow:
        cut = blob.index(b"\n")
        start, end, signals = json.loads(blob[:cut])
        samples = np.frombuffer(blob, dtype="<f8", offset=cut + 1).tolist()
        observations, at = {}, 0
        for name, stat, size, counts in signals:
            observations[name] = WindowObservation(
                float(start),
                None if stat is None else float(stat),
                samples[at : at + size],
                None if counts is None else (float(counts[0]), float(counts[1])),
            )
            at += size
        return cls(float(start), float(end), observations)


class WindowArchive:
    """Closed windows' observations by (service, window start) in a mapping of bytes: the
    worker's ``loop-windows`` table, or a dict where there is no Kafka.

    >>> archive = WindowArchive()
    >>> archive.put("api", RecentWindow(10.0, 20.0, {}))
    >>> archive.get("api", 10.0), archive.get("api", 20.0)
    (RecentWindow(start=10.0, end=20.0, observations={}), None)
    """

    def __init__(self, store: MutableMapping[bytes, bytes] | None = None) -> None:
        self.store: MutableMapping[bytes, bytes] = {} if store is None else store

    @staticmethod
    def key(service: str, start: float) -> bytes:
        return f"{service}\x1f{start!r}".encode()

    def put(self, service: str, window: RecentWindow) -> None:
        self.store[self.key(service, window.start)] = window.to_bytes()

    def get(self, service: str, start: float) -> RecentWindow | None:
        blob = self.store.get(self.key(service, start))
        return None if blob is None else RecentWindow.from_bytes(blob)

    def drop(self, service: str, start: float) -> None:
        self.store.pop(self.key(service, start), None)


@dataclass
class ServiceBook:
    """The loop's state for one service. ``windows`` lists the (start, end) of the windows in
    ``archive``, in start order; the archive itself is not part of the book's JSON."""

    service: str
    incidents: dict[str, Incident] = field(default_factory=dict)  # area -> open incident
    windows: list[tuple[float, float]] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)  # recently closed incident ids
    pending_diagnoses: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending_results: dict[str, dict[str, Any]] = field(default_factory=dict)
    archive: WindowArchive = field(default_factory=WindowArchive, repr=False, compare=False)

    def hold_result(self, action_id: str, result: dict[str, Any]) -> None:
        """Keep a result that arrived before its command was issued (bounded)."""
        self.pending_results[action_id] = result
        while len(self.pending_results) > CLOSED_REMEMBERED:
            self.pending_results.pop(next(iter(self.pending_results)))

    def add_window(self, window: RecentWindow, retained_s: float) -> bool:
        """Archive ``window`` once; drop the windows that start more than ``retained_s``
        before the newest. False when the window was already known, or is that old itself."""
        windows = self.windows
        at = bisect.bisect_left(windows, (window.start, -float("inf")))
        if at < len(windows) and windows[at][0] == window.start:
            return False
        newest = max(window.start, windows[-1][0]) if windows else window.start
        horizon = newest - retained_s
        if window.start < horizon:
            return False
        self.archive.put(self.service, window)
        windows.insert(at, (window.start, window.end))
        old = bisect.bisect_left(windows, (horizon, -float("inf")))
        for start, _ in windows[:old]:
            self.archive.drop(self.service, start)
        del windows[:old]
        return True

    def _archived(self, spans: list[tuple[float, float]]) -> Iterator[RecentWindow]:
        for start, _ in spans:
            window = self.archive.get(self.service, start)
            if window is not None:
                yield window

    def windows_from(self, since: float, count: int) -> list[RecentWindow]:
        """The first ``count`` archived windows that start at or after ``since``."""
        at = bisect.bisect_left(self.windows, (since, -float("inf")))
        return list(self._archived(self.windows[at : at + count]))

    def next_window_end(self, after: float) -> float | None:
        """The end of the first archived window that ends after ``after``, if any."""
        return next((end for _, end in self.windows if end > after), None)

    def fill_baseline(self, inc: Incident) -> None:
        """Copy the breach windows' observations into the incident while they are known."""
        have = {o.start for o in inc.baseline}
        spans = [
            span
            for span in self.windows
            if inc.first_window_start <= span[0] < inc.window_end and span[0] not in have
        ]
        for w in self._archived(spans):
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
        before: list[WindowObservation] = []
        earlier = [span for span in self.windows if span[1] <= att.issued_at]
        for w in self._archived(earlier[::-1]):
            obs = w.observations.get(inc.signal)
            if obs is not None:
                before.append(obs)
                if len(before) == len(inc.baseline):
                    break
        return before[::-1] or inc.baseline

    def close(self, area: str) -> None:
        incident = self.incidents.pop(area)
        self.closed = [*self.closed, incident.incident_id][-CLOSED_REMEMBERED:]

    def dumps(self) -> bytes:
        doc = {
            "service": self.service,
            "incidents": {a: i.to_json() for a, i in self.incidents.items()},
            "windows": self.windows,
            "closed": self.closed,
            "pending_diagnoses": self.pending_diagnoses,
            "pending_results": self.pending_results,
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def loads(cls, blob: bytes, archive: WindowArchive | None = None) -> ServiceBook:
        """The book :meth:`dumps` wrote, its windows in ``archive``."""
        doc = json.loads(blob)
        book = cls(
            service=doc["service"],
            incidents={a: Incident.from_json(i) for a, i in doc["incidents"].items()},
            windows=[(float(s), float(e)) for s, e in doc["windows"]],
            closed=list(doc["closed"]),
            pending_diagnoses=dict(doc["pending_diagnoses"]),
            pending_results=dict(doc["pending_results"]),
            archive=WindowArchive() if archive is None else archive,
        )
        return book
