"""Scenario files: the simulated services, their faults and the simulation's pace (TOML).

A scenario names the services, what goes wrong with them and when. Times are seconds of
*simulated* (event) time from the start of the simulation; ``strength`` scales how far a
fault pushes its area past the threshold (1.0 crosses it clearly, 2.0 twice as far).

.. code-block:: toml

    [simulation]
    seed = 7          # the CLI's --seed overrides it
    rate = 10.0       # points per simulated second per metric
    speed = 1.0       # simulated seconds per wall second (the CLI's --speed overrides it)
    period_s = 600.0  # the daily-ish load pattern's period
    amplitude = 0.15  # ... and its relative amplitude (at most 0.2)

    [[service]]
    name = "checkout"
    throughput_target_rps = 200.0   # the rate detection must compare throughput with

    [[fault]]
    service = "checkout"
    area = "memory"
    cause = "cache"
    at = 30.0         # starts 30 s (event time) after the start
    strength = 1.5
    ramp_s = 20.0     # reaches full strength over 20 s
    # duration_s = 120.0  # optional: goes away by itself after that long

Every service emits throughput around 1.35 times its ``throughput_target_rps`` when healthy;
detection only knows the target when the configuration says it (see
:func:`detection_overrides`).

>>> s = Scenario.model_validate({"fault": [{"service": "api", "area": "latency",
...                                          "cause": "database", "at": 10}]})
>>> [x.name for x in s.services], s.faults[0].strength
(['api'], 1.0)
>>> detection_overrides(s)
{'services': {'api': {'throughput_target_rps': 200.0}}}
>>> Scenario.model_validate({"fault": [{"service": "api", "area": "memory", "cause": "disk"}]})
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for Scenario
fault.0
  Value error, cause: 'disk' is not a cause of area 'memory'; known: cache, model, workers ...
...
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from perfloop.schemas.fields import AreaName, Name
from perfloop.schemas.vocabulary import causes_of


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SimulationSpec(_Strict):
    """The pace and shape of the simulation."""

    seed: int = 0
    rate: float = Field(10.0, gt=0, le=10_000)
    speed: float = Field(1.0, gt=0, le=10_000)
    period_s: float = Field(600.0, gt=0)
    amplitude: float = Field(0.15, ge=0, le=0.2)


class ServiceSpec(_Strict):
    """One simulated service; ``scale`` multiplies its sizes and traffic (at most 1.4, so
    that a healthy service stays clearly below the memory threshold)."""

    name: Name
    throughput_target_rps: float = Field(200.0, gt=0)
    scale: float = Field(1.0, gt=0, le=1.4)


class FaultSpec(_Strict):
    """One injected fault: a cause of an area, on a service, from ``at`` on."""

    service: Name
    area: AreaName
    cause: str
    at: float = Field(0.0, ge=0)
    strength: float = Field(1.0, gt=0, le=10)
    ramp_s: float = Field(20.0, ge=0)
    duration_s: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _cause(self) -> FaultSpec:
        known = causes_of(self.area)
        if self.cause not in known:
            raise ValueError(
                f"cause: {self.cause!r} is not a cause of area {self.area!r}; "
                f"known: {', '.join(known)}"
            )
        return self


class Scenario(_Strict):
    """Services and faults. Services named only by faults get the defaults."""

    simulation: SimulationSpec = SimulationSpec()
    services: tuple[ServiceSpec, ...] = Field((), alias="service")
    faults: tuple[FaultSpec, ...] = Field((), alias="fault")

    @model_validator(mode="after")
    def _services(self) -> Scenario:
        names = [s.name for s in self.services]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"service: {sorted(dup)[0]!r} is declared twice")
        if self.services:
            for i, fault in enumerate(self.faults):
                if fault.service not in names:
                    raise ValueError(
                        f"fault[{i}].service: {fault.service!r} is not a declared service; "
                        f"declared: {', '.join(names)}"
                    )
            return self
        derived = list(dict.fromkeys(f.service for f in self.faults)) or ["api"]
        object.__setattr__(self, "services", tuple(ServiceSpec(name=n) for n in derived))
        return self

    def service(self, name: str) -> ServiceSpec:
        for spec in self.services:
            if spec.name == name:
                return spec
        raise ValueError(f"service: {name!r} is not in the scenario")


BUNDLED = Path(__file__).resolve().parent.parent / "scenarios"
"""The scenarios that ship with perfloop (package data): ``all-areas``, ``learning``, ..."""


def scenario_file(name_or_path: str | Path) -> Path:
    """``name_or_path`` as a file: an existing path as is, else a bundled scenario's name
    (``all-areas`` or ``all-areas.toml``) when one has it, else the path as given."""
    file = Path(name_or_path)
    if file.exists() or file.parent != Path("."):
        return file
    bundled = BUNDLED / (file.name if file.suffix == ".toml" else f"{file.name}.toml")
    return bundled if bundled.exists() else file


def load_scenario(path: str | Path) -> Scenario:
    """The scenario in the TOML file ``path`` (or the bundled scenario of that name, see
    :func:`scenario_file`); ``ValueError`` naming the file when bad."""
    file = scenario_file(path)
    try:
        data: dict[str, Any] = tomllib.loads(file.read_text())
    except FileNotFoundError:
        raise ValueError(f"scenario: no such file {str(file)!r}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"scenario: {str(file)!r} is not valid TOML: {exc}") from None
    try:
        return Scenario.model_validate(data)
    except ValueError as exc:
        raise ValueError(f"scenario {str(file)!r}: {exc}") from None


def detection_overrides(scenario: Scenario) -> dict[str, Any]:
    """The ``detection`` configuration that tells perfloop each service's throughput target
    (merge it into the configuration, e.g. ``[detection.services.checkout]``)."""
    return {
        "services": {
            s.name: {"throughput_target_rps": s.throughput_target_rps} for s in scenario.services
        }
    }


def detection_toml(scenario: Scenario) -> str:
    """:func:`detection_overrides` as TOML text for a configuration file.

    >>> print(detection_toml(Scenario.model_validate({"service": [{"name": "a"}]})), end="")
    [detection.services.a]
    throughput_target_rps = 200.0
    """
    lines = []
    for s in scenario.services:
        key = s.name if re.fullmatch(r"[A-Za-z0-9_-]+", s.name) else json.dumps(s.name)
        lines += [
            f"[detection.services.{key}]",
            f"throughput_target_rps = {s.throughput_target_rps!r}",
        ]
    return "\n".join(lines) + "\n"
