"""The registered areas: the five built in, any a distribution adds, any registered at run time.

The stages ask here instead of naming areas. A distribution adds an area by naming an object
that implements :class:`~perfloop.areas.base.Area` in the ``perfloop.areas`` entry-point
group; :func:`register` adds one at run time (a test, an embedding program). Every area is
checked when it is registered (:func:`check`): a broken one is refused with a message that
names the area and what is wrong, before any stage reads it.

>>> names()
('memory', 'latency', 'throughput', 'cache', 'attribution')
>>> get("cache").triggers[0].name
'cache_hit_rate'
>>> get("disk")
Traceback (most recent call last):
...
ValueError: area: unknown area 'disk'; known: memory, latency, throughput, cache, attribution
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from perfloop.areas.base import Area, Trigger

#: The built-in areas, by module of this package, in the order the stages list them.
BUILTIN = ("memory", "latency", "throughput", "cache", "attribution")
#: The entry-point group through which a distribution adds areas.
GROUP = "perfloop.areas"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

_areas: dict[str, Area] | None = None
_generation = 0


def _load() -> dict[str, Area]:
    global _areas
    if _areas is None:
        found: dict[str, Area] = {}
        for module in BUILTIN:
            area = importlib.import_module(f"perfloop.areas.{module}").AREA
            found[area.name] = area
        for point in entry_points(group=GROUP):
            try:
                area = point.load()
            except Exception as exc:
                raise ValueError(f"area plugin {point.value!r}: cannot load: {exc}") from exc
            check(area, found)
            found[area.name] = area
        _areas = found
    return _areas


def areas() -> tuple[Area, ...]:
    """Every registered area, built-in ones first."""
    return tuple(_load().values())


def names() -> tuple[str, ...]:
    return tuple(_load())


def get(name: str) -> Area:
    """The area called ``name``; ``ValueError`` naming the known ones if there is none."""
    found = _load().get(name)
    if found is None:
        raise ValueError(f"area: unknown area {name!r}; known: {', '.join(_load())}")
    return found


def trigger(area: str, name: str) -> Trigger:
    """The trigger called ``name`` of ``area``; ``ValueError`` naming the known ones."""
    triggers = get(area).triggers
    for t in triggers:
        if t.name == name:
            return t
    known = ", ".join(t.name for t in triggers)
    raise ValueError(f"signal: {name!r} is not a trigger of area {area!r}; known: {known}")


def generation() -> int:
    """A number that changes whenever the registered areas do (a key for caches)."""
    return _generation


def check(area: Area, others: dict[str, Area] | None = None) -> None:
    """``ValueError`` naming ``area`` and the first thing wrong with it, if anything is."""
    from perfloop.schemas.config import DetectionConfig

    name = getattr(area, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"area: name {name!r} is not a lower-case identifier of 1-64 chars")
    others = _load() if others is None else others
    if name in others and others[name] is not area:
        raise ValueError(f"area {name!r}: already registered")

    def fail(what: str) -> ValueError:
        return ValueError(f"area {name!r}: {what}")

    if not area.causes:
        raise fail("has no causes")
    for cause, remedies in area.causes.items():
        if not remedies:
            raise fail(f"cause {cause!r} has no remedies")
        for r in remedies:
            if (r.area, r.cause) != (name, cause):
                raise fail(f"remedy {r.name!r} is {r.area}/{r.cause}'s, listed as {name}/{cause}'s")
    if set(area.components) != set(area.causes):
        raise fail(f"components {sorted(area.components)} differ from causes {list(area.causes)}")
    missing = [m for m in area.components.values() if m not in area.signals]
    if missing:
        raise fail(f"components {missing} are not among its signals")
    if not area.triggers:
        raise fail("has no triggers")
    taken = {t.name for other in others.values() if other is not area for t in other.triggers}
    defaults = DetectionConfig()
    for t in area.triggers:
        if t.name in taken:
            raise fail(f"trigger {t.name!r} is another area's")
        if not t.metrics:
            raise fail(f"trigger {t.name!r} reads no metric")
        defaults.rule(t.rule, t.default_rule)  # a rule the configuration has, or a default


def register(area: Area) -> None:
    """Add ``area`` (checked first, see :func:`check`)."""
    global _generation
    check(area)
    _load()[area.name] = area
    _generation += 1


def unregister(name: str) -> None:
    """Remove the area called ``name``; the built-in areas stay."""
    global _generation
    if name in BUILTIN:
        raise ValueError(f"area {name!r}: a built-in area cannot be removed")
    get(name)
    del _load()[name]
    _generation += 1


@contextmanager
def registered(area: Area) -> Iterator[Area]:
    """``area`` registered for the duration of a ``with`` block."""
    register(area)
    try:
        yield area
    finally:
        unregister(area.name)
