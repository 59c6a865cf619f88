"""The in-process run's bookkeeping: it reads the messages as they pass (breaches, diagnoses,
commands, outcomes, verdicts, incident transitions) and turns them into a
:class:`~perfloop.simulator.harness_report.HarnessReport`.

Times in the report are simulated seconds from ``start_ts``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from perfloop.schemas.messages import (
    ActionCommand,
    Breach,
    Diagnosis,
    IncidentTransition,
    Verification,
)
from perfloop.simulator.faults import FaultView
from perfloop.simulator.harness_report import HarnessReport, IncidentRecord, RemedyTry
from perfloop.simulator.simulation import Outcome


@dataclass
class _Try:
    cause: str
    remedy: str
    verdict: str | None = None
    effect: str | None = None


@dataclass
class _Incident:
    incident_id: str
    service: str
    area: str
    opened_at: float
    outcome: str = "open"
    closed_at: float | None = None
    tries: dict[str, _Try] = field(default_factory=dict)  # action id -> the try, in order


class Ledger:
    """What the loop did to each incident, from the messages it sent."""

    def __init__(self, start_ts: float) -> None:
        self.start_ts = start_ts
        self._breaches: dict[str, Breach] = {}
        self._diagnoses: dict[str, Diagnosis] = {}  # breach id -> its first diagnosis
        self._incidents: dict[str, _Incident] = {}
        self._owner: dict[str, str] = {}  # action id -> incident id
        self._applying: str | None = None

    def breach(self, breach: Breach) -> None:
        self._breaches.setdefault(breach.breach_id, breach)

    def diagnosis(self, diagnosis: Diagnosis) -> None:
        self._diagnoses.setdefault(diagnosis.breach_id, diagnosis)

    def command(self, command: ActionCommand) -> None:
        """A command on its way to the executor (which is about to apply it)."""
        self._applying = command.action_id
        incident = self._incidents.get(command.incident_id)
        if incident is not None and command.action_id not in incident.tries:
            incident.tries[command.action_id] = _Try(command.cause, command.remedy)
            self._owner[command.action_id] = incident.incident_id

    def applied(self, outcome: Outcome) -> None:
        """The simulator handler applied the command :meth:`command` saw last."""
        attempt = self._try(self._applying)
        if attempt is not None:
            attempt.effect = outcome.effect

    def verification(self, verification: Verification) -> None:
        attempt = self._try(verification.action_id)
        if attempt is not None:
            attempt.verdict = verification.verdict

    def transition(self, t: IncidentTransition) -> None:
        if t.from_state is None:
            self._incidents.setdefault(
                t.incident_id,
                _Incident(t.incident_id, t.service, t.area, t.ts - self.start_ts),
            )
            return
        incident = self._incidents.get(t.incident_id)
        if incident is not None and t.to_state in ("resolved", "escalated"):
            incident.outcome, incident.closed_at = t.to_state, t.ts - self.start_ts

    def _try(self, action_id: str | None) -> _Try | None:
        owner = self._owner.get(action_id or "")
        return None if owner is None else self._incidents[owner].tries.get(action_id or "")

    # -- the report ------------------------------------------------------------------------
    def report(
        self, faults: Sequence[FaultView], seed: int, duration_s: float, windows: int,
        dead_letters: int,
    ) -> HarnessReport:  # fmt: skip
        records = []
        for inc in sorted(self._incidents.values(), key=lambda i: (i.opened_at, i.service)):
            diagnosis = self._diagnoses.get(inc.incident_id)
            fault = self._fault_of(inc, faults)
            records.append(
                IncidentRecord(
                    incident_id=inc.incident_id,
                    service=inc.service,
                    area=inc.area,
                    opened_at=inc.opened_at,
                    injected_cause=None if fault is None else fault.cause,
                    diagnosed_cause=None if diagnosis is None else diagnosis.cause,
                    remedies=tuple(
                        RemedyTry(t.cause, t.remedy, t.verdict, t.effect)
                        for t in inc.tries.values()
                    ),
                    outcome=inc.outcome,
                    closed_at=inc.closed_at,
                    fault_at=None if fault is None else fault.at,
                )
            )
        return HarnessReport(tuple(records), tuple(faults), seed, duration_s, windows, dead_letters)

    def _fault_of(self, inc: _Incident, faults: Sequence[FaultView]) -> FaultView | None:
        """The fault the incident was opened for: on its service and area,
        started before the breach window ended, not fixed before the breach's first window
        (the latest such fault when there are several)."""
        breach = self._breaches.get(inc.incident_id)
        if breach is None:
            return None
        end = breach.window_end - self.start_ts
        first = breach.first_window_start - self.start_ts
        found = [
            f
            for f in faults
            if f.service == inc.service
            and f.area == inc.area
            and f.at < end
            and (f.resolved_at is None or f.resolved_at >= first)
        ]
        return max(found, key=lambda f: f.at) if found else None
