"""How well each remedy fixes its cause in the simulator: the efficacy table.

When a command names the remedy of the cause that is really at work, the fault goes away with
probability ``fix``; otherwise its strength is cut by ``partial`` (0 means the remedy did
nothing). The best remedy of a cause is deliberately *not* the first one of the flowchart, so
a planner that only follows the flowchart's order does worse than one that learns.

A remedy of another cause of the same area (a wrong diagnosis) does nothing, except with
probability :data:`WRONG_WORSE_P` when it makes the fault :data:`WRONG_FACTOR` times
stronger.

Each area's simulator profile holds its part of the table (``profile.efficacy``, see
:mod:`perfloop.areas`); :func:`markdown_table` prints the whole of it.

>>> efficacy("memory", "cache", "compress_data")
Efficacy(fix=0.8, partial=0.4)
>>> best_remedy("memory", "cache")
'compress_data'
>>> len(efficacy_table())
45
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from perfloop.areas import registry

#: A wrong remedy (another cause's) makes the fault this much stronger ...
WRONG_FACTOR: Final[float] = 1.1
#: ... with this probability; otherwise it does nothing.
WRONG_WORSE_P: Final[float] = 0.3


@dataclass(frozen=True, slots=True)
class Efficacy:
    """``fix``: probability the remedy removes the fault; ``partial``: the fraction of the
    fault's strength it removes when it does not."""

    fix: float
    partial: float


def efficacy_table() -> dict[tuple[str, str, str], Efficacy]:
    """(area, cause, remedy) -> its efficacy against that cause, for every registered area
    (an area's remedies its profile does not rate do nothing: 0 / 0)."""
    return {
        (a.name, cause, r.name): Efficacy(*a.profile.efficacy.get((cause, r.name), (0.0, 0.0)))
        for a in registry.areas()
        for cause, remedies in a.causes.items()
        for r in remedies
    }


def efficacy(area: str, cause: str, remedy: str) -> Efficacy:
    """The efficacy of ``remedy`` against ``cause``; ``ValueError`` if it is not its remedy."""
    found = registry.get(area)
    if remedy not in (r.name for r in found.causes.get(cause, ())):
        raise ValueError(f"remedy: {remedy!r} is not a remedy for {area}/{cause}")
    return Efficacy(*found.profile.efficacy.get((cause, remedy), (0.0, 0.0)))


def best_remedy(area: str, cause: str) -> str:
    """The remedy of ``cause`` most likely to fix it."""
    names = [r.name for r in registry.get(area).causes[cause]]
    return max(names, key=lambda r: efficacy(area, cause, r).fix)


def markdown_table() -> str:
    """The efficacy table, best remedy first within each cause, as Markdown."""
    lines = ["| area | cause | remedy | fix probability | partial cut |", "|---|---|---|---|---|"]
    table = efficacy_table()
    for a in registry.areas():
        for cause, remedies in a.causes.items():
            ranked = sorted(
                (r.name for r in remedies), key=lambda r: -table[(a.name, cause, r)].fix
            )
            for r in ranked:
                e = table[(a.name, cause, r)]
                lines.append(f"| {a.name} | {cause} | `{r}` | {e.fix:.2f} | {e.partial:.2f} |")
    return "\n".join(lines) + "\n"
