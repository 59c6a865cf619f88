"""An injected fault's life: it ramps up from ``at``, is weakened or fixed by remedies, and
fades out over :data:`RECOVERY_S` once fixed (or once its ``duration_s`` is over).

Times are seconds of simulated time since the start of the simulation.

>>> import numpy as np
>>> from perfloop.simulator.scenario import FaultSpec
>>> f = Fault(FaultSpec(service="api", area="cache", cause="expiry", at=10, strength=2,
...                     ramp_s=10))
>>> f.levels(np.array([5.0, 15.0, 25.0])).tolist()
[0.0, 1.0, 2.0]
>>> f.resolve(30.0, "background_refresh")
>>> f.levels(np.array([30.0, 32.5, 40.0])).tolist()
[2.0, 1.0, 0.0]
>>> f.view(40.0).active, f.view(40.0).resolved_by
(False, 'background_refresh')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from perfloop.simulator.scenario import FaultSpec

#: Seconds (simulated) a fixed fault takes to fade out completely.
RECOVERY_S: Final[float] = 5.0
#: No remedy makes a fault stronger than this.
MAX_STRENGTH: Final[float] = 10.0

Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class FaultView:
    """A snapshot of one fault at simulated time ``now``: ``active`` when it has started and
    is not resolved; ``resolved_at`` (simulated seconds) and ``resolved_by`` (a remedy name,
    or ``expired``) once it is."""

    service: str
    area: str
    cause: str
    at: float
    initial_strength: float
    strength: float
    active: bool
    resolved_at: float | None
    resolved_by: str | None
    attempts: int


class Fault:
    """The mutable state of one injected fault (see the module docstring)."""

    def __init__(self, spec: FaultSpec) -> None:
        self.spec = spec
        self.strength = spec.strength
        self.resolved_at: float | None = None
        self.resolved_by: str | None = None
        self._fade_from = 0.0
        self.attempts = 0

    @property
    def service(self) -> str:
        return self.spec.service

    @property
    def area(self) -> str:
        return self.spec.area

    @property
    def cause(self) -> str:
        return self.spec.cause

    def _ramp(self, t: Array) -> Array:
        if self.spec.ramp_s <= 0:
            return (t >= self.spec.at).astype(np.float64)
        ramp: Array = np.clip((t - self.spec.at) / self.spec.ramp_s, 0.0, 1.0)
        return ramp

    def level(self, t: float) -> float:
        """The fault's level at simulated time ``t``."""
        return float(self.levels(np.array([t], dtype=np.float64))[0])

    def levels(self, t: Array) -> Array:
        """The fault's level at each simulated time of ``t`` (0 = no effect)."""
        out: Array = self.strength * self._ramp(t)
        if self.resolved_at is not None:
            fade = np.clip(1.0 - (t - self.resolved_at) / RECOVERY_S, 0.0, 1.0)
            out = np.where(t >= self.resolved_at, self._fade_from * fade, out)
        return out

    def active(self, now: float) -> bool:
        return now >= self.spec.at and self.resolved_at is None

    def expire(self, now: float) -> None:
        """Resolve the fault as ``expired`` when its duration is over by ``now``."""
        if self.spec.duration_s is None or self.resolved_at is not None:
            return
        end = self.spec.at + self.spec.duration_s
        if now >= end:
            self.resolve(end, "expired")

    def resolve(self, now: float, by: str) -> None:
        """The fault is fixed at ``now``; it fades out from its current level."""
        if self.resolved_at is not None:
            return
        self._fade_from = self.level(now)
        self.resolved_at = now
        self.resolved_by = by

    def scale(self, factor: float) -> None:
        """Multiply the strength (a partial fix below 1, a wrong remedy above)."""
        self.strength = min(MAX_STRENGTH, self.strength * factor)

    def view(self, now: float) -> FaultView:
        return FaultView(
            service=self.service,
            area=self.area,
            cause=self.cause,
            at=self.spec.at,
            initial_strength=self.spec.strength,
            strength=self.strength,
            active=self.active(now),
            resolved_at=self.resolved_at,
            resolved_by=self.resolved_by,
            attempts=self.attempts,
        )
