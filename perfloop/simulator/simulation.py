"""The simulation: services emitting metrics under injected faults, and remedies acting on them.

:meth:`Simulation.tick` is pure computation (no Kafka): given the wall clock, it returns the
columnar metric batches (``MetricBatch``-shaped dicts, one per service and metric) for the
simulated time elapsed since the previous tick. Simulated (event) time starts at ``start_ts``
(default: the wall clock of the first tick) and runs ``speed`` times faster than the wall
clock, but never more than ``max_lead_s`` ahead of it (ingest rejects points, and commands
must not expire, more than an hour in the future; past the lead it runs at wall-clock
pace). Points come ``rate`` per simulated second per metric.

:meth:`Simulation.apply` is what the executor's ``simulator`` handler calls: the right remedy
for an active fault fixes it with the remedy's efficacy (:mod:`perfloop.simulator.efficacy`),
or weakens it; another cause's remedy does nothing or makes it slightly worse; a dry run
changes nothing. The draw depends only on the seed and the command's ``action_id``, so a
run is reproducible whatever the order commands arrive in.

>>> from perfloop.simulator.scenario import Scenario
>>> scenario = Scenario.model_validate({"fault": [
...     {"service": "api", "area": "memory", "cause": "cache", "at": 5, "ramp_s": 0}]})
>>> sim = Simulation(scenario, seed=1, rate=2.0, start_ts=1_700_000_000.0)
>>> first = sim.tick(1_800_000_000.0)
>>> len(first), first[0]["service"], first[0]["metric"], first[0]["ts"]
(28, 'api', 'memory_bytes', [1700000000.0])
>>> batches = sim.tick(1_800_000_010.0)
>>> len(batches[0]["ts"]), max(batches[0]["values"]) > 33.6e9
(20, True)
>>> [(f.cause, f.active) for f in sim.faults]
[('cache', True)]
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np

from perfloop.schemas.messages import ActionCommand
from perfloop.simulator.efficacy import WRONG_FACTOR, WRONG_WORSE_P, efficacy
from perfloop.simulator.faults import Fault, FaultView
from perfloop.simulator.scenario import Scenario
from perfloop.simulator.services import Array, ServiceModel

#: How far simulated time may run ahead of the wall clock by default (seconds).
MAX_LEAD_S: Final[float] = 3000.0

Effect = Literal["fixed", "reduced", "unchanged", "worse", "no_fault", "dry_run"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one command did to the simulated service; ``detail`` is the executor's result."""

    service: str
    area: str
    cause: str
    remedy: str
    effect: Effect
    at: float
    detail: str

    @property
    def fixed(self) -> bool:
        return self.effect == "fixed"


class Simulation:
    """Simulated services and their faults (see the module docstring)."""

    def __init__(
        self,
        scenario: Scenario,
        seed: int | None = None,
        rate: float | None = None,
        speed: float | None = None,
        *,
        start_ts: float | None = None,
        max_lead_s: float = MAX_LEAD_S,
    ) -> None:
        spec = scenario.simulation
        self.scenario = scenario
        self.seed = spec.seed if seed is None else seed
        self.rate = spec.rate if rate is None else rate
        self.speed = spec.speed if speed is None else speed
        if not self.rate > 0 or not self.speed > 0:
            raise ValueError(f"rate/speed: must be positive, got {self.rate!r}/{self.speed!r}")
        self.start_ts = start_ts
        self.max_lead_s = max_lead_s
        self.period_s, self.amplitude = spec.period_s, spec.amplitude
        streams = np.random.SeedSequence(self.seed).spawn(len(scenario.services))
        self.services = [
            ServiceModel(s, np.random.default_rng(ss), self.rate)
            for s, ss in zip(scenario.services, streams, strict=True)
        ]
        self._faults = [Fault(f) for f in scenario.faults]
        self._lock = threading.Lock()
        self._wall0: float | None = None
        self._next_k = 0
        self.clock = 0.0  # simulated seconds since the start, of the last point emitted
        self.outcomes: list[Outcome] = []

    # -- time and metrics ------------------------------------------------------------------

    @property
    def started(self) -> bool:
        """Whether the first tick has happened (it anchors simulated time)."""
        return self._wall0 is not None

    def simulated_time(self, now: float) -> float:
        """Simulated seconds since the start at wall clock ``now``."""
        if self._wall0 is None or self.start_ts is None:
            return 0.0
        fast = (now - self._wall0) * self.speed
        lead_cap = now + self.max_lead_s - self.start_ts
        return max(0.0, min(fast, lead_cap))

    def tick(self, now: float) -> list[dict[str, Any]]:
        """The metric batches for simulated time up to wall clock ``now`` (see the module
        docstring); an empty list when no new point is due."""
        with self._lock:
            if self._wall0 is None:
                self._wall0 = now
                if self.start_ts is None:
                    self.start_ts = now
            assert self.start_ts is not None
            last_k = math.floor(self.simulated_time(now) * self.rate + 1e-9)
            if last_k < self._next_k:
                return []
            k = np.arange(self._next_k, last_k + 1, dtype=np.float64)
            self._next_k = last_k + 1
            t = k / self.rate
            self.clock = float(t[-1])
            for fault in self._faults:
                fault.expire(self.clock)
            ts = np.round(self.start_ts + t, 3).tolist()
            load = self._load(t)
            out: list[dict[str, Any]] = []
            for i, svc in enumerate(self.services):
                levels = self._levels(svc.name, t)
                series = svc.emit(t, load[i], levels)
                for metric, values in series.items():
                    out.append(
                        {
                            "service": svc.name,
                            "metric": metric,
                            "ts": ts,
                            "values": np.round(values, 6).tolist(),
                        }
                    )
            return out

    def _load(self, t: Array) -> list[Array]:
        angle = 2 * np.pi * t / self.period_s
        return [1.0 + self.amplitude * np.sin(angle + svc.phase) for svc in self.services]

    def _levels(self, service: str, t: Array) -> dict[str, Array]:
        levels: dict[str, Array] = {}
        for fault in self._faults:
            if fault.service != service:
                continue
            key = f"{fault.area}/{fault.cause}"
            level = fault.levels(t)
            levels[key] = levels[key] + level if key in levels else level
        return levels

    # -- faults and remedies ---------------------------------------------------------------

    @property
    def faults(self) -> list[FaultView]:
        """Every fault of the scenario as it stands now (active, pending or resolved)."""
        with self._lock:
            return [f.view(self.clock) for f in self._faults]

    def apply(self, command: ActionCommand) -> str:
        """Apply ``command`` to the simulated service; the detail line of its outcome."""
        return self.apply_outcome(command).detail

    def apply_outcome(self, command: ActionCommand) -> Outcome:
        """Apply ``command`` and return what it did (see the module docstring)."""
        with self._lock:
            outcome = self._apply(command)
            self.outcomes.append(outcome)
            return outcome

    def _apply(self, command: ActionCommand) -> Outcome:
        now = self.clock
        what = f"{command.service} {command.area}/{command.cause}/{command.remedy}"

        def done(effect: Effect, detail: str) -> Outcome:
            return Outcome(
                command.service, command.area, command.cause, command.remedy, effect, now,
                f"{what}: {detail}",
            )  # fmt: skip

        if command.dry_run:
            return done("dry_run", "dry run, nothing changed")
        hit = [
            f
            for f in self._faults
            if f.service == command.service and f.area == command.area and f.active(now)
        ]
        if not hit:
            return done("no_fault", f"no active {command.area} fault, nothing changed")
        rng = random.Random(f"{self.seed}:{command.action_id}")
        right = [f for f in hit if f.cause == command.cause]
        for fault in hit:
            fault.attempts += 1
        if right:
            power = efficacy(command.area, command.cause, command.remedy)
            before = sum(f.strength for f in right)
            fixed = 0
            for fault in right:
                if rng.random() < power.fix:
                    fault.resolve(now, command.remedy)
                    fixed += 1
                else:
                    fault.scale(1.0 - power.partial)
            if fixed == len(right):
                return done("fixed", "fault fixed")
            after = sum(f.strength for f in right if f.resolved_at is None)
            if after < before:
                return done("reduced", f"fault not fixed, strength {before:.2f} -> {after:.2f}")
            return done("unchanged", "fault not fixed, no effect")
        before = sum(f.strength for f in hit)
        if rng.random() < WRONG_WORSE_P:
            for fault in hit:
                fault.scale(WRONG_FACTOR)
            after = sum(f.strength for f in hit)
            causes = ", ".join(sorted({f.cause for f in hit}))
            return done("worse", f"wrong remedy for {causes}, strength {before:.2f} -> {after:.2f}")
        return done("unchanged", "wrong remedy, no effect")
