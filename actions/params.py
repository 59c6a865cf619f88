"""Declared parameters of remedies: their type, default and bounds, and their validation.

A parameter is a bool, an int or a float with inclusive or exclusive bounds, or a string
chosen from an enum. Anything else is refused with an error naming the parameter and value.

>>> factor = ParamSpec.number("factor", 0.5, low=0.0, high=1.0, low_inclusive=False)
>>> factor.check(0.25)
0.25
>>> factor.check(0)
Traceback (most recent call last):
...
perfloop.actions.params.ParamError: factor: 0 is not above the lower bound 0.0
>>> factor.describe()
'float in (0.0, 1.0], default 0.5'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

ParamKind = Literal["bool", "int", "float", "enum"]
Value = bool | int | float | str


class ParamError(ValueError):
    """A parameter is unknown, of the wrong type, or outside its declared bounds."""


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter of a remedy."""

    name: str
    kind: ParamKind
    default: Value
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind == "enum" and not self.choices:
            raise ParamError(f"{self.name}: an enum parameter needs choices")
        self.check(self.default)  # a default outside its own bounds is a catalog bug

    @classmethod
    def boolean(cls, name: str, default: bool) -> ParamSpec:
        return cls(name, "bool", default)

    @classmethod
    def integer(
        cls, name: str, default: int, *, low: int | None = None, high: int | None = None
    ) -> ParamSpec:
        return cls(name, "int", default, low=low, high=high)

    @classmethod
    def number(
        cls,
        name: str,
        default: float,
        *,
        low: float | None = None,
        high: float | None = None,
        low_inclusive: bool = True,
        high_inclusive: bool = True,
    ) -> ParamSpec:
        return cls(name, "float", default, low, high, low_inclusive, high_inclusive)

    @classmethod
    def enum(cls, name: str, default: str, choices: tuple[str, ...]) -> ParamSpec:
        return cls(name, "enum", default, choices=choices)

    def check(self, value: object) -> Value:
        """``value`` if it fits this parameter (ints are widened for floats), else raise."""
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ParamError(f"{self.name}: {value!r} is not a bool")
            return value
        if self.kind == "enum":
            if not isinstance(value, str) or value not in self.choices:
                raise ParamError(f"{self.name}: {value!r} is not one of {', '.join(self.choices)}")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParamError(f"{self.name}: {value!r} is not a number")
        if self.kind == "int" and not isinstance(value, int):
            raise ParamError(f"{self.name}: {value!r} is not an integer")
        if not math.isfinite(value):
            raise ParamError(f"{self.name}: {value!r} is not a finite number")
        self._check_bounds(value)
        return float(value) if self.kind == "float" else value

    def _check_bounds(self, value: int | float) -> None:
        if self.low is not None:
            if value < self.low or (value == self.low and not self.low_inclusive):
                word = "below" if self.low_inclusive else "not above"
                raise ParamError(f"{self.name}: {value!r} is {word} the lower bound {self.low}")
        if self.high is not None:
            if value > self.high or (value == self.high and not self.high_inclusive):
                word = "above" if self.high_inclusive else "not below"
                raise ParamError(f"{self.name}: {value!r} is {word} the upper bound {self.high}")

    def describe(self) -> str:
        """A short human description: type, bounds and default."""
        if self.kind == "enum":
            return f"one of {{{', '.join(self.choices)}}}, default {self.default}"
        if self.kind == "bool":
            return f"bool, default {str(self.default).lower()}"
        lo = "-inf" if self.low is None else str(self.low)
        hi = "inf" if self.high is None else str(self.high)
        left = "[" if self.low_inclusive and self.low is not None else "("
        right = "]" if self.high_inclusive and self.high is not None else ")"
        return f"{self.kind} in {left}{lo}, {hi}{right}, default {self.default}"


def check_params(
    specs: tuple[ParamSpec, ...], params: dict[str, object], *, where: str = "params"
) -> dict[str, Value]:
    """The defaults of ``specs`` overridden by ``params``, every value checked.

    >>> specs = (ParamSpec.integer("delta", 2, low=-8, high=8),)
    >>> check_params(specs, {})
    {'delta': 2}
    >>> check_params(specs, {"size": 3})
    Traceback (most recent call last):
    ...
    perfloop.actions.params.ParamError: params.size: unknown parameter (=3); known: delta
    """
    known = {spec.name: spec for spec in specs}
    for name, value in params.items():
        if name not in known:
            raise ParamError(
                f"{where}.{name}: unknown parameter (={value!r}); "
                f"known: {', '.join(known) or 'none'}"
            )
    out: dict[str, Value] = {}
    for spec in specs:
        try:
            out[spec.name] = spec.check(params.get(spec.name, spec.default))
        except ParamError as exc:
            raise ParamError(f"{where}.{exc}") from None
    return out
