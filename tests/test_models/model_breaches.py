"""A breach for a synthetic history, shared by the model tests."""

from __future__ import annotations

from schemas.messages import Breach, WindowAggregate
from schemas.vocabulary import TRIGGER_METRICS


def breach_for(area: str, history: list[WindowAggregate], breach_id: str = "b-1") -> Breach:
    """A breach of ``area`` in the last window of ``history``."""
    last = history[-1]
    return Breach(
        breach_id=breach_id,
        service=last.service,
        area=area,  # type: ignore[arg-type]
        signal=TRIGGER_METRICS[area][0],
        observed=1.0,
        threshold=0.5,
        direction="above",
        window_start=last.start,
        window_end=last.end,
        first_window_start=history[0].start,
        windows=len(history),
    )
