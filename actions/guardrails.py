"""Limits on how often perfloop acts, all in event time (seconds since the epoch).

- at most one remedy in flight per (service, area), until it is settled (verified or failed);
- a cooldown per service after each remedy;
- a circuit breaker: at most N remedies per service per hour and M per minute overall; past
  either limit the planner escalates to a person instead of acting.

>>> from perfloop.schemas.config import PlannerConfig
>>> rails = Guardrails(PlannerConfig(cooldown_s=30, max_per_service_per_hour=2))
>>> rails.check("checkout", "memory", now=1000.0) is None
True
>>> rails.issued("checkout", "memory", now=1000.0)
>>> rails.check("checkout", "memory", now=1001.0)
Wait(reason='a remedy is in flight for checkout/memory', until=None)
>>> rails.settled("checkout", "memory")
>>> rails.check("checkout", "memory", now=1010.0)
Wait(reason='checkout is cooling down until 1030', until=1030.0)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from perfloop.schemas.config import PlannerConfig

HOUR_S = 3600.0
MINUTE_S = 60.0


@dataclass(frozen=True)
class Wait:
    """Do nothing now; ``until`` is the event time after which acting may be possible."""

    reason: str
    until: float | None = None


@dataclass(frozen=True)
class Escalate:
    """Hand the incident to a person; perfloop does not act on it any more."""

    reason: str


class Guardrails:
    """In-flight, cooldown and circuit-breaker state; pure, fed with event times."""

    def __init__(self, config: PlannerConfig) -> None:
        self.config = config
        self._in_flight: set[tuple[str, str]] = set()
        self._last_issued: dict[str, float] = {}
        self._per_service: dict[str, deque[float]] = {}
        self._global: deque[float] = deque()

    def check(self, service: str, area: str, now: float) -> Wait | Escalate | None:
        """Why acting on (service, area) at ``now`` is not allowed, or None if it is."""
        if (service, area) in self._in_flight:
            return Wait(f"a remedy is in flight for {service}/{area}")
        last = self._last_issued.get(service)
        if last is not None and now < last + self.config.cooldown_s:
            until = last + self.config.cooldown_s
            return Wait(f"{service} is cooling down until {_seconds(until)}", until)
        recent = _prune(self._per_service.get(service, deque()), now - HOUR_S)
        if len(recent) >= self.config.max_per_service_per_hour:
            return Escalate(
                f"circuit breaker: {len(recent)} remedies for {service} in the last hour "
                f"(limit {self.config.max_per_service_per_hour})"
            )
        overall = _prune(self._global, now - MINUTE_S)
        if len(overall) >= self.config.max_global_per_minute:
            return Escalate(
                f"circuit breaker: {len(overall)} remedies overall in the last minute "
                f"(limit {self.config.max_global_per_minute})"
            )
        return None

    def issued(self, service: str, area: str, now: float) -> None:
        """Record a remedy issued for (service, area) at event time ``now``."""
        self._in_flight.add((service, area))
        self._last_issued[service] = max(now, self._last_issued.get(service, now))
        self._per_service.setdefault(service, deque()).append(now)
        self._global.append(now)

    def settled(self, service: str, area: str) -> None:
        """The remedy in flight for (service, area) has an outcome; another may follow."""
        self._in_flight.discard((service, area))

    def in_flight(self, service: str, area: str) -> bool:
        return (service, area) in self._in_flight


def _prune(times: deque[float], horizon: float) -> deque[float]:
    while times and times[0] <= horizon:
        times.popleft()
    return times


def _seconds(ts: float) -> str:
    return f"{ts:.3f}".rstrip("0").rstrip(".")
