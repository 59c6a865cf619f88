"""The constrained field types of perfloop's messages: finite numbers, sane event times,
bounded names and labels, and the names that must be registered (areas).

>>> from pydantic import TypeAdapter
>>> TypeAdapter(Name).validate_python("checkout-v2")
'checkout-v2'
>>> TypeAdapter(AreaName).validate_python("disk")
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for ...
  Value error, area: unknown area 'disk'; known: memory, latency, throughput, cache, attribution ...
...
"""

from __future__ import annotations

import math
import time
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints

from perfloop.schemas.vocabulary import areas

MIN_TS = 946_684_800.0  # 2000-01-01
MAX_FUTURE_S = 3600.0


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    return value


def _sane_ts(value: float) -> float:
    _finite(value)
    if value < MIN_TS:
        raise ValueError(f"{value!r} is before 2000-01-01 (seconds since the epoch expected)")
    if value > time.time() + MAX_FUTURE_S:
        raise ValueError(f"{value!r} is more than {MAX_FUTURE_S:.0f} s in the future")
    return value


Finite = Annotated[float, Field(strict=True, allow_inf_nan=True), AfterValidator(_finite)]
Timestamp = Annotated[float, Field(strict=True, allow_inf_nan=True), AfterValidator(_sane_ts)]
# finite as pydantic checks it itself, with no Python call per value ("Input should be a
# finite number"): for the window aggregates, built and read for every window on the hot path
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Name = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:/@-]+$")
]
Text = Annotated[str, StringConstraints(max_length=4000)]
Labels = Annotated[
    dict[Name, Annotated[str, StringConstraints(max_length=128)]], Field(max_length=16)
]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


def _known_area(name: str) -> str:
    if name not in areas():
        raise ValueError(f"area: unknown area {name!r}; known: {', '.join(areas())}")
    return name


class _AreaEnum:
    """The JSON schema of an area name: the areas registered when the schema is made."""

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> dict[str, Any]:
        return {**handler(schema), "enum": list(areas())}


#: One of the registered areas (:mod:`perfloop.areas.registry`).
AreaName = Annotated[str, AfterValidator(_known_area), _AreaEnum()]
Verdict = Literal["resolved", "improved", "unchanged", "regressed", "no_data"]
ResultStatus = Literal["applied", "failed", "rejected", "duplicate", "expired"]
IncidentState = Literal["breached", "diagnosed", "acting", "verifying", "resolved", "escalated"]
ParamValue = float | int | bool | Annotated[str, StringConstraints(max_length=256)]
