"""What an in-process run of the loop did: every incident, every injected fault, and whether
the loop needed fewer remedies per incident as it learned.

An incident is matched to the injected fault it was opened for (same service and area,
started before the breach window ended and not fixed before the breach's first window);
an incident with no such fault is a false alarm (``injected_cause`` is None).

>>> tries = (RemedyTry("cache", "reduce_ttl", "improved", "reduced"),
...          RemedyTry("cache", "compress_data", "resolved", "fixed"))
>>> first = IncidentRecord("api:memory:1", "api", "memory", 30.0, "cache", "cache", tries,
...                        "resolved", 130.0)
>>> second = IncidentRecord("api:memory:2", "api", "memory", 530.0, "cache", "cache",
...                         tries[1:], "resolved", 580.0)
>>> report = HarnessReport((first, second), (), seed=1, duration_s=600.0)
>>> report.halves()
((2.0, 1), (1.0, 1))
>>> print(report.summary())
2 incidents, 2 resolved, 0 escalated, 0 open; diagnosis right for 2 of 2 with a known cause
remedies per resolved incident: first half 2.00 (1 incidents), second half 1.00 (1 incidents)
best remedy for the cause tried first: first half 0%, second half 100%
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from perfloop.simulator.efficacy import best_remedy
from perfloop.simulator.faults import FaultView


@dataclass(frozen=True, slots=True)
class RemedyTry:
    """One remedy the loop sent: the cause it was meant for, the verification verdict (None
    when it never got one) and what it did to the simulated fault (``fixed``, ``reduced``,
    ``unchanged``, ``worse``, ``no_fault``; None when it was never applied)."""

    cause: str
    remedy: str
    verdict: str | None = None
    effect: str | None = None


@dataclass(frozen=True, slots=True)
class IncidentRecord:
    """One incident: ``opened_at`` and ``closed_at`` are simulated seconds from the start;
    ``outcome`` is ``resolved``, ``escalated`` or ``open`` (still open when the run ended)."""

    incident_id: str
    service: str
    area: str
    opened_at: float
    injected_cause: str | None
    diagnosed_cause: str | None
    remedies: tuple[RemedyTry, ...]
    outcome: str
    closed_at: float | None = None
    fault_at: float | None = None

    @property
    def resolved(self) -> bool:
        return self.outcome == "resolved"

    @property
    def time_to_resolve_s(self) -> float | None:
        """Seconds from the breach to the verdict that resolved it (None unless resolved)."""
        if not self.resolved or self.closed_at is None:
            return None
        return self.closed_at - self.opened_at

    @property
    def diagnosis_right(self) -> bool | None:
        """Whether the diagnosis named the injected cause (None for a false alarm)."""
        if self.injected_cause is None:
            return None
        return self.diagnosed_cause == self.injected_cause


@dataclass(frozen=True)
class HarnessReport:
    """The incidents of a run in opening order, the faults as they ended, and the run's
    seed and length (simulated seconds)."""

    incidents: tuple[IncidentRecord, ...]
    faults: tuple[FaultView, ...]
    seed: int
    duration_s: float
    windows: int = 0
    dead_letters: int = 0

    # -- figures ---------------------------------------------------------------------------
    def resolved(self) -> list[IncidentRecord]:
        return [i for i in self.incidents if i.resolved]

    def unfixed_faults(self) -> list[FaultView]:
        """Injected faults that no remedy removed in the simulation (still active, maybe
        weakened below the threshold by partial fixes; never started; or expired)."""
        return [f for f in self.faults if f.resolved_by in (None, "expired")]

    def unresolved_faults(self) -> list[FaultView]:
        """Injected faults without an incident the loop resolved."""
        done = {(i.service, i.area, i.fault_at) for i in self.resolved()}
        return [f for f in self.faults if (f.service, f.area, f.at) not in done]

    def diagnosis_accuracy(self) -> tuple[int, int]:
        """(right, judged): diagnoses that named the injected cause, of incidents with one."""
        judged = [i.diagnosis_right for i in self.incidents if i.diagnosis_right is not None]
        return sum(judged), len(judged)

    def halves(self) -> tuple[tuple[float, int], tuple[float, int]]:
        """(mean remedies per resolved incident, incidents) for the first and the second
        half of the resolved incidents in opening order (the middle one, if any, goes to the
        second half)."""
        resolved = self.resolved()  # already in opening order
        first, second = resolved[: len(resolved) // 2], resolved[len(resolved) // 2 :]
        return (_mean_remedies(first), len(first)), (_mean_remedies(second), len(second))

    def best_first(self) -> tuple[float, float]:
        """The share of resolved incidents (with a known cause) whose first remedy was the
        best one for the injected cause (:func:`~perfloop.simulator.efficacy.best_remedy`),
        in the first and in the second half, as in :meth:`halves`."""
        resolved = self.resolved()
        first, second = resolved[: len(resolved) // 2], resolved[len(resolved) // 2 :]
        return _best_share(first), _best_share(second)

    # -- text ------------------------------------------------------------------------------
    def summary(self) -> str:
        """Three lines: the outcome counts and the first-half / second-half comparison."""
        count = {o: sum(i.outcome == o for i in self.incidents) for o in ("resolved",
                 "escalated", "open")}  # fmt: skip
        right, judged = self.diagnosis_accuracy()
        (m1, n1), (m2, n2) = self.halves()
        b1, b2 = self.best_first()
        return (
            f"{len(self.incidents)} incidents, {count['resolved']} resolved, "
            f"{count['escalated']} escalated, {count['open']} open; "
            f"diagnosis right for {right} of {judged} with a known cause\n"
            f"remedies per resolved incident: first half {m1:.2f} ({n1} incidents), "
            f"second half {m2:.2f} ({n2} incidents)\n"
            f"best remedy for the cause tried first: first half {b1:.0%}, second half {b2:.0%}"
        )

    def table(self) -> str:
        """Every incident as a row, then the faults no remedy fixed, then the summary."""
        head = ("opened s", "service", "area", "injected", "diagnosed", "outcome", "resolve s",
                "remedies (verdict/effect)")  # fmt: skip
        rows = [head]
        for i in self.incidents:
            tried = ", ".join(
                f"{r.remedy}({r.verdict or '-'}/{r.effect or '-'})"
                + ("" if r.cause == i.diagnosed_cause else f"[{r.cause}]")
                for r in i.remedies
            )
            ttr = i.time_to_resolve_s
            rows.append(
                (
                    f"{i.opened_at:.0f}", i.service, i.area, i.injected_cause or "(none)",
                    i.diagnosed_cause or "-", i.outcome, "-" if ttr is None else f"{ttr:.0f}",
                    tried or "-",
                )
            )  # fmt: skip
        widths = [max(len(r[c]) for r in rows) for c in range(len(head) - 1)]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
            for r in rows
        ]
        for f in self.unresolved_faults():
            lines.append(f"fault not resolved: {f.service} {f.area}/{f.cause} at {f.at:g}s")
        for f in self.unfixed_faults():
            state = f.resolved_by or (
                f"active at strength {f.strength:.2f}" if f.active else "not started"
            )
            lines.append(f"fault not removed: {f.service} {f.area}/{f.cause} at {f.at:g}s: {state}")
        lines.append(
            f"seed {self.seed}, {self.duration_s:.0f} s simulated, {self.windows} windows, "
            f"{self.dead_letters} dead letters"
        )
        lines.append(self.summary())
        return "\n".join(lines)


def _best_share(incidents: Sequence[IncidentRecord]) -> float:
    judged = [i for i in incidents if i.injected_cause is not None and i.remedies]
    if not judged:
        return float("nan")
    best = [i.remedies[0].remedy == best_remedy(i.area, i.injected_cause or "") for i in judged]
    return sum(best) / len(judged)


def _mean_remedies(incidents: Sequence[IncidentRecord]) -> float:
    if not incidents:
        return float("nan")
    return sum(len(i.remedies) for i in incidents) / len(incidents)
