"""A remedy of the catalog: what an executor may be asked to do, with bounded parameters.

Each area declares its remedies in its own module (:mod:`perfloop.areas`), in flowchart order
per cause; :mod:`perfloop.actions.catalog` gathers them from the registered areas.

>>> r = Remedy("memory", "cache", "reduce_ttl", "Shorten cache entry lifetimes.",
...            (F("factor", 0.5, low=0.0, high=1.0),), "memory_cache_bytes", "down")
>>> r.key, r.defaults()
(('memory', 'cache', 'reduce_ttl'), {'factor': 0.5})
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from perfloop.actions.params import ParamSpec, Value

B, N, F, E = ParamSpec.boolean, ParamSpec.integer, ParamSpec.number, ParamSpec.enum
#: The codecs a compressing remedy may name.
CODECS = ("zstd", "lz4", "gzip")


@dataclass(frozen=True)
class Remedy:
    """One remedy of the catalog, identified by (area, cause, name)."""

    area: str
    cause: str
    name: str
    description: str
    params: tuple[ParamSpec, ...]
    metric: str
    direction: Literal["down", "up"]
    accelerator: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.area, self.cause, self.name)

    def defaults(self) -> dict[str, Value]:
        return {spec.name: spec.default for spec in self.params}


def remedies_of(area: str) -> Callable[..., Remedy]:
    """A short builder of ``area``'s remedies: ``_r(cause, name, description, metric,
    direction, *params, accelerator=False)``."""

    def build(
        cause: str,
        name: str,
        description: str,
        metric: str,
        direction: Literal["down", "up"],
        *params: ParamSpec,
        accelerator: bool = False,
    ) -> Remedy:
        return Remedy(area, cause, name, description, params, metric, direction, accelerator)

    return build


def by_cause(*remedies: Remedy) -> dict[str, tuple[Remedy, ...]]:
    """``remedies`` (flowchart order) grouped by cause, in the order causes first appear."""
    out: dict[str, list[Remedy]] = {}
    for r in remedies:
        out.setdefault(r.cause, []).append(r)
    return {cause: tuple(group) for cause, group in out.items()}
