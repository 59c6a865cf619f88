"""The window messages of a closing window: one per service, from its cells and its
finished series."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from perfloop.schemas.messages import SCHEMA_VERSION, SeriesAggregate, WindowAggregate, unchecked
from perfloop.streams.decoded import SeriesKey
from perfloop.streams.group_aggregates import held_quantiles
from perfloop.streams.window_cell import WindowCell

MAX_SERIES_PER_WINDOW = 10_000  # WindowAggregate.series' limit
MAX_NAME = 128  # the longest window id a window message takes


@dataclass(slots=True)
class Dropped:
    """What closing windows left out: whole windows a message cannot carry, and the series
    past a window's limit."""

    windows: int = 0
    series: int = 0


def window_id(service: str, start: float) -> str:
    """The deterministic id of a service's window: ``f"{service}:{start in ms}"``."""
    return f"{service}:{round(start * 1000)}"


def _named(
    fields: dict[str, Any], metric: str, labels: tuple[tuple[str, str], ...]
) -> dict[str, Any]:
    """A finished series' fields (:func:`~perfloop.streams.window_fold.finish_groups`) with
    its name."""
    fields["metric"], fields["labels"] = metric, dict(labels)
    return fields


def window_aggregates(
    start: float,
    end: float,
    series_keys: list[SeriesKey],
    cells: dict[int, WindowCell],
    finished: dict[int, dict[str, Any]],
    alpha: float,
    dropped: Dropped,
) -> Iterator[WindowAggregate]:
    """The services' windows of ``[start, end)``, in service order, from its ``cells`` and
    the ``finished`` series' fields (both by series id, an index of ``series_keys``); each
    service's cells and fields leave them as its window is built. What a window message
    cannot carry is counted in ``dropped``."""
    by_service: dict[str, list[tuple[str, tuple[tuple[str, str], ...], int]]]
    by_service = defaultdict(list)
    for sid in itertools.chain(cells, finished):
        key = series_keys[sid]
        by_service[key.service].append((key.metric, key.labels, sid))
    held = [sid for sid, cell in cells.items() if cell.sketch is None]
    quantiles = held_quantiles([cells[sid] for sid in held], alpha)
    quantiles_of = {} if quantiles is None else dict(zip(held, quantiles, strict=True))
    for service in sorted(by_service):
        rows = sorted(by_service.pop(service), key=lambda r: (r[0], r[1]))
        if len(rows) > MAX_SERIES_PER_WINDOW:
            dropped.series += len(rows) - MAX_SERIES_PER_WINDOW
            rows = rows[:MAX_SERIES_PER_WINDOW]
        wid = window_id(service, start)
        if len(wid) > MAX_NAME or not math.isfinite(end):  # what a window cannot carry
            dropped.windows += 1
            continue
        series = [
            unchecked(SeriesAggregate, _named(finished.pop(sid), m, lab))
            if sid in finished
            else unchecked(
                SeriesAggregate, cells.pop(sid).series_fields(m, lab, quantiles_of.get(sid))
            )
            for m, lab, sid in rows
        ]
        # the fields hold the schema as built: names and labels were validated as points
        # came (IngestConfig's limits are the schema's at most), every number is finite
        # (sums saturate), samples are at most WindowsConfig's 4,096 values
        yield unchecked(
            WindowAggregate,
            {"schema_version": SCHEMA_VERSION, "window_id": wid, "service": service,
             "start": start, "end": end, "series": series},
        )  # fmt: skip
