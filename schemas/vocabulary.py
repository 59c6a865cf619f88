"""The vocabulary of perfloop: areas, causes, remedy names and metric names.

These names are part of the public contract (see the README). Each area declares its own
(:mod:`perfloop.areas`); this module reads them from the registered areas, so an area added
by a plugin is known everywhere at once.

>>> causes_of("memory")
('cache', 'model', 'workers')
>>> remedies_of("memory", "cache")
('reduce_ttl', 'increase_eviction', 'compress_data')
>>> is_known_remedy("cache", "capacity", "compress_data")
True
>>> "latency_db_ms" in non_negative_metrics(), "temperature_c" in non_negative_metrics()
(True, False)
"""

from __future__ import annotations

from functools import lru_cache

from perfloop.areas import registry


def areas() -> tuple[str, ...]:
    """The names of the registered areas."""
    return registry.names()


def causes_of(area: str) -> tuple[str, ...]:
    """The causes the model tells apart for ``area``, in flowchart order."""
    return tuple(registry.get(area).causes)


def remedies_of(area: str, cause: str) -> tuple[str, ...]:
    """The remedies for ``cause`` in ``area``, in flowchart order."""
    causes = registry.get(area).causes
    if cause not in causes:
        raise ValueError(
            f"cause: unknown cause {cause!r} for area {area!r}; known: {', '.join(causes)}"
        )
    return tuple(r.name for r in causes[cause])


def remedy_tree() -> dict[str, dict[str, tuple[str, ...]]]:
    """area -> cause -> remedy names, in flowchart order."""
    return {
        a.name: {c: tuple(r.name for r in rs) for c, rs in a.causes.items()}
        for a in registry.areas()
    }


def is_known_remedy(area: str, cause: str, remedy: str) -> bool:
    """Whether (area, cause, remedy) names a remedy of the catalog."""
    try:
        return remedy in remedies_of(area, cause)
    except ValueError:
        return False


def trigger_metrics(area: str) -> tuple[str, ...]:
    """The metrics ``area``'s triggers read."""
    return tuple(dict.fromkeys(m for t in registry.get(area).triggers for m in t.metrics))


def area_metrics(area: str) -> tuple[str, ...]:
    """Every metric of ``area``: its trigger metrics, then the metrics of its causes."""
    return tuple(dict.fromkeys((*trigger_metrics(area), *registry.get(area).cause_metrics)))


def non_negative_metrics() -> frozenset[str]:
    """Every metric of the registered areas. Each is a size, a duration, a count, a rate or a
    ratio: none of them can be negative."""
    return _metrics(registry.generation())


@lru_cache(maxsize=1)
def _metrics(generation: int) -> frozenset[str]:
    return frozenset(m for a in registry.names() for m in area_metrics(a))
