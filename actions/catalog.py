"""The catalog of remedies: the single source of truth for what an executor may be asked to do.

Each area declares its remedies in its own module (:mod:`perfloop.areas`); the catalog is
every registered area's, each a :class:`~perfloop.actions.remedy.Remedy` with its
description, declared parameters and the metric it is expected to move. The documentation
table is generated from here (:func:`markdown_table`).

>>> len(catalog())
45
>>> remedy("memory", "cache", "reduce_ttl").params[0].describe()
'float in (0.0, 1.0], default 0.5'
>>> validate_params("memory", "model", "reduce_precision", {"dtype": "bfloat16"})
{'dtype': 'bfloat16'}
>>> validate_params("memory", "cache", "reduce_ttl", {"factor": 2})
Traceback (most recent call last):
...
perfloop.actions.params.ParamError: memory/cache/reduce_ttl params.factor: 2 is above the upper ...
"""

from __future__ import annotations

from typing import Final

from perfloop.actions.params import ParamError, Value, check_params
from perfloop.actions.remedy import Remedy
from perfloop.areas import registry

#: The devices an accelerator remedy may name ("MPS" in the flowcharts).
DEVICES: Final[tuple[str, ...]] = ("mps", "cuda", "xpu", "cpu")

__all__ = ["DEVICES", "Remedy", "catalog", "markdown_table", "remedies_for", "remedy"]


def catalog() -> tuple[Remedy, ...]:
    """Every remedy of the registered areas, in flowchart order (area, cause, position)."""
    return tuple(r for a in registry.areas() for rs in a.causes.values() for r in rs)


def remedy(area: str, cause: str, name: str) -> Remedy:
    """The catalog entry for (area, cause, name); ``ParamError`` naming it if unknown."""
    try:
        entries = remedies_for(area, cause)
    except ValueError as exc:
        raise ParamError(f"remedy: {name!r} is not in the catalog: {exc}") from None
    for entry in entries:
        if entry.name == name:
            return entry
    known = ", ".join(r.name for r in entries)
    raise ParamError(f"remedy: {name!r} is not in the catalog for {area}/{cause}; known: {known}")


def remedies_for(area: str, cause: str) -> tuple[Remedy, ...]:
    """The catalog entries of one cause, in flowchart order; ``ValueError`` if unknown."""
    causes = registry.get(area).causes
    if cause not in causes:
        known = ", ".join(causes)
        raise ValueError(f"cause: unknown cause {cause!r} for area {area!r}; known: {known}")
    return causes[cause]


def validate_params(
    area: str, cause: str, name: str, params: dict[str, object]
) -> dict[str, Value]:
    """The remedy's defaults overridden by ``params``; ``ParamError`` naming param and value."""
    entry = remedy(area, cause, name)
    return check_params(entry.params, params, where=f"{area}/{cause}/{name} params")


def markdown_table() -> str:
    """The documentation table of every remedy, generated from :func:`catalog`.

    >>> row = markdown_table().splitlines()[2]
    >>> row.split(" | ")[2], row.split(" | ")[4]
    ('`reduce_ttl`', '`factor`: float in (0.0, 1.0], default 0.5')
    """
    lines = [
        "| area | cause | remedy | what it does | parameters | expected to move |",
        "|---|---|---|---|---|---|",
    ]
    for r in catalog():
        params = "; ".join(f"`{p.name}`: {p.describe()}" for p in r.params) or "none"
        if r.accelerator:
            params += "; carries the device"
        arrow = "↓" if r.direction == "down" else "↑"
        lines.append(
            f"| {r.area} | {r.cause} | `{r.name}` | {r.description} | {params} "
            f"| `{r.metric}` {arrow} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
