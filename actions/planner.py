"""Choosing the next remedy for an incident: pure logic, no Kafka.

Causes are tried most probable first (ties in flowchart order); within a cause, remedies not
yet tried in this incident are ranked by :class:`~perfloop.actions.bandit.RemedyBandit`. When a
cause's remedies are exhausted the next cause follows; when every remedy of the area has
been tried, or ``max_attempts`` is reached, the planner escalates. The guardrails
(:mod:`perfloop.actions.guardrails`) may turn an action into a :class:`Wait` or an
:class:`Escalate`.

A returned :class:`Act` counts as issued: the guardrails record it at once, so the caller
only has to send the command, then call :meth:`Planner.settled` when its outcome is known.

>>> from perfloop.schemas.config import PlannerConfig
>>> planner = Planner(PlannerConfig(cooldown_s=0))
>>> probs = {"cache": 0.7, "model": 0.2, "workers": 0.1}
>>> act = planner.decide(incident_id="inc-1", service="api", area="memory",
...                      probabilities=probs, history=[], now=1_700_000_000.0)
>>> act.cause, act.remedy, act.params, act.attempt
('cache', 'reduce_ttl', {'factor': 0.5}, 1)
>>> planner.settled("api", "memory")
>>> tried = [Attempt("cache", "reduce_ttl", "unchanged")]
>>> planner.decide(incident_id="inc-1", service="api", area="memory",
...                probabilities=probs, history=tried, now=1_700_000_100.0).remedy
'increase_eviction'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from perfloop.actions.bandit import RemedyBandit
from perfloop.actions.catalog import remedy as catalog_remedy
from perfloop.actions.catalog import validate_params
from perfloop.actions.guardrails import Escalate, Guardrails, Wait
from perfloop.actions.params import Value
from perfloop.actions.signing import Keyring, build_command
from perfloop.schemas.config import PlannerConfig
from perfloop.schemas.messages import ActionCommand, Diagnosis
from perfloop.schemas.vocabulary import causes_of, remedies_of

__all__ = ["Act", "Attempt", "Decision", "Escalate", "Planner", "Wait", "command_for"]


@dataclass(frozen=True)
class Attempt:
    """A remedy already tried in this incident; ``verdict`` is None while it is in flight."""

    cause: str
    remedy: str
    verdict: str | None = None


@dataclass(frozen=True)
class Act:
    """Apply ``remedy`` for ``cause`` with validated ``params``; ``attempt`` counts from 1."""

    cause: str
    remedy: str
    params: dict[str, Value] = field(default_factory=dict)
    attempt: int = 1
    dry_run: bool = False
    device: str | None = None
    probability: float = 0.0


Decision = Act | Wait | Escalate


class Planner:
    """The next remedy for an incident, under the guardrails of ``config``."""

    def __init__(
        self, config: PlannerConfig | None = None, bandit: RemedyBandit | None = None
    ) -> None:
        self.config = config or PlannerConfig()
        self.bandit = bandit or RemedyBandit(
            self.config.seed, self.config.prior_strength, self.config.exploration
        )
        self.guardrails = Guardrails(self.config)

    def next_remedy(
        self,
        area: str,
        probabilities: Mapping[str, float],
        history: Sequence[Attempt],
        *,
        key: str = "",
        now: float | None = None,
    ) -> Act | Escalate:
        """The next remedy by cause probability and learned rank, ignoring the guardrails."""
        if len(history) >= self.config.max_attempts:
            return Escalate(f"attempt limit reached ({self.config.max_attempts} attempts)")
        tried = {(a.cause, a.remedy) for a in history}
        causes = causes_of(area)
        order = sorted(causes, key=lambda c: (-probabilities.get(c, 0.0), causes.index(c)))
        for cause in order:
            left = [r for r in remedies_of(area, cause) if (cause, r) not in tried]
            if not left:
                continue
            best = self.bandit.rank(area, cause, left, key=f"{key}:{len(history) + 1}", now=now)[0]
            entry = catalog_remedy(area, cause, best)
            return Act(
                cause=cause,
                remedy=best,
                params=validate_params(area, cause, best, {}),
                attempt=len(history) + 1,
                dry_run=self.config.dry_run,
                device=self.config.device if entry.accelerator else None,
                probability=float(probabilities.get(cause, 0.0)),
            )
        return Escalate(f"every remedy for {area} has been tried ({len(tried)} remedies)")

    def decide(
        self,
        *,
        incident_id: str,
        service: str,
        area: str,
        probabilities: Mapping[str, float],
        history: Sequence[Attempt],
        now: float,
    ) -> Decision:
        """Act, wait or escalate at event time ``now``; an Act is recorded as issued."""
        pending = [a for a in history if a.verdict is None]
        if pending:
            return Wait(f"{pending[-1].remedy} is in flight for {incident_id}")
        choice = self.next_remedy(area, probabilities, history, key=incident_id, now=now)
        if isinstance(choice, Escalate):
            return choice
        blocked = self.guardrails.check(service, area, now)
        if blocked is not None:
            return blocked
        self.guardrails.issued(service, area, now)
        return choice

    def decide_for(self, diagnosis: Diagnosis, history: Sequence[Attempt], now: float) -> Decision:
        """:meth:`decide` for a diagnosis (its incident, or its breach when it has none)."""
        return self.decide(
            incident_id=diagnosis.incident_id or diagnosis.breach_id,
            service=diagnosis.service,
            area=diagnosis.area,
            probabilities=diagnosis.probabilities,
            history=history,
            now=now,
        )

    def settled(self, service: str, area: str) -> None:
        """The remedy in flight for (service, area) has an outcome (verified or failed)."""
        self.guardrails.settled(service, area)

    def reward(
        self, area: str, cause: str, remedy: str, success: bool, ts: float | None = None
    ) -> None:
        """Teach the bandit one verified outcome (verified at event time ``ts``)."""
        self.bandit.reward(area, cause, remedy, success, ts)


def command_for(
    act: Act, *, incident_id: str, service: str, area: str, now: float, keys: Keyring,
    ttl_s: float,
) -> ActionCommand:  # fmt: skip
    """The signed command carrying ``act`` (issued at event time ``now``)."""
    return build_command(
        incident_id=incident_id, service=service, area=area, cause=act.cause,
        remedy=act.remedy, params=act.params, attempt=act.attempt, issued_at=now, ttl_s=ttl_s,
        keys=keys, dry_run=act.dry_run, device=act.device,
    )  # fmt: skip
