"""What an area is: the protocol each area implements in its own module.

An area (memory, latency, ...) says in one place everything perfloop knows about it:

- its **causes** and each cause's **remedies** (catalog entries, flowchart order);
- its **triggers**: the signals detection compares with a threshold rule, each with the
  metrics it reads and the :class:`VerificationTest` that judges a remedy against it;
- its **diagnosis signals** (``signals``, in feature order), the **component** that measures
  each cause's part, and the **whole** those parts are shares of;
- its **simulator profile** (how a simulated service emits its metrics and how remedies
  work there) and its **synthetic shape** (seeded histories for tests and benchmarks).

Like river's estimators, an area is a few methods and no hidden state: everything it reads
comes in as a :class:`~perfloop.areas.view.SeriesView`. The stages ask the registry
(:mod:`perfloop.areas.registry`) for the areas instead of branching on their names.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from perfloop.areas.view import SeriesView
from perfloop.schemas.config import ThresholdRule, VerificationConfig

if TYPE_CHECKING:
    from perfloop.actions.remedy import Remedy
    from perfloop.streams.verify import VerificationResult, WindowObservation

Array = npt.NDArray[np.float64]
#: ``cause`` -> that fault's level at each time of a simulated batch (0 when absent).
Levels = Callable[[str], Array]


class VerificationTest(Protocol):
    """How a remedy against one trigger is judged: what a window contributes
    (``observe``) and the verdict from the windows before and after (``verify``)."""

    def observe(self, view: SeriesView, trigger: Trigger) -> WindowObservation: ...

    def verify(
        self,
        rule: ThresholdRule,
        baseline: list[WindowObservation],
        post: list[WindowObservation],
        cfg: VerificationConfig,
    ) -> VerificationResult: ...


@dataclass(frozen=True, slots=True)
class Trigger:
    """One detection signal of an area: its name on breaches (``latency_ms.p95``), the
    detection rule it is held to (a ``[detection]`` key, or one of ``[detection.rules]``),
    the metrics it reads, how its value is read from a window (``None``: the window does not
    carry it), its verification test, and the rule's default for a rule the configuration
    does not name (an area added by a plugin)."""

    name: str
    rule: str
    metrics: tuple[str, ...]
    read: Callable[[SeriesView], float | None]
    test: VerificationTest
    default_rule: ThresholdRule | None = None

    def rule_of(self, view: SeriesView) -> ThresholdRule:
        """The configured rule of this trigger for the view's service."""
        return view.rule(self.rule, self.default_rule)


class Profile(Protocol):
    """How a simulated service shows the area: ``baseline`` draws the healthy levels once
    (``jitter`` varies a number by about 10 %), ``emit`` gives the area's metrics at the times
    of a batch under ``load`` (one value a time) and fault ``levels``, for a service whose
    target rate is ``target_rps`` and whose batches hold ``rate`` points a second of event
    time; ``efficacy`` is (fix probability, partial cut) per (cause, remedy) for the
    simulator's executor."""

    @property
    def efficacy(self) -> Mapping[tuple[str, str], tuple[float, float]]: ...

    def baseline(self, scale: float, jitter: Callable[[float], float]) -> dict[str, float]: ...

    def emit(
        self,
        base: Mapping[str, float],
        load: Array,
        levels: Levels,
        rng: np.random.Generator,
        target_rps: float,
        rate: float,
    ) -> dict[str, Array]: ...


#: The points each series of a synthetic window has (a counter's mean is its count over this).
SYNTHETIC_COUNT = 10


class Synthetic(Protocol):
    """Seeded windows of the area for tests and benchmarks: ``parts`` gives each cause's
    component level; ``window`` writes the area's metrics (window means) from them;
    ``quiet`` writes its trigger metrics at unremarkable levels (context for other areas)."""

    @property
    def base(self) -> tuple[float, float]: ...

    def window(self, parts: list[float], rng: random.Random) -> dict[str, float]: ...

    def quiet(self, rng: random.Random) -> dict[str, float]: ...


class Area(Protocol):
    """The protocol (see the module docstring). Its members are read, never set, by the
    stages: a plain class attribute of any narrower type implements each."""

    @property
    def name(self) -> str: ...
    @property
    def causes(self) -> Mapping[str, tuple[Remedy, ...]]: ...
    @property
    def triggers(self) -> tuple[Trigger, ...]: ...
    @property
    def cause_metrics(self) -> tuple[str, ...]: ...
    @property
    def signals(self) -> tuple[str, ...]: ...
    @property
    def components(self) -> Mapping[str, str]: ...
    @property
    def profile(self) -> Profile: ...
    @property
    def synthetic(self) -> Synthetic: ...

    def read(self, view: SeriesView) -> dict[str, float | None]:
        """Every diagnosis signal (``signals`` order); ``None`` where the window lacks it."""
        ...

    def whole(self, view: SeriesView, readings: Mapping[str, float | None]) -> float | None:
        """What the components are parts of (``None``: the sum of those present)."""
        ...


def severity(value: float, rule: ThresholdRule) -> float:
    """How far ``value`` is towards firing ``rule``: 1 at the fire threshold, above 1 beyond
    it, whichever the rule's direction.

    >>> from perfloop.schemas.config import ThresholdRule
    >>> severity(750.0, ThresholdRule(direction="above", fire=500.0, clear=450.0))
    1.5
    >>> severity(0.4, ThresholdRule(direction="below", fire=0.8, clear=0.85))
    2.0
    """
    if rule.direction == "above":
        return value / rule.fire if rule.fire else value
    return rule.fire / value if value > 0 else (0.0 if rule.fire <= 0 else 1e6)
