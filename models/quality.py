"""Prequential (test-then-train) accuracy over a sliding window.

>>> acc = PrequentialAccuracy(window=3)
>>> acc.value is None
True
>>> for hit in (True, False, True, True):
...     acc.update(hit)
>>> round(acc.value, 3), acc.seen
(0.667, 4)
"""

from __future__ import annotations

from collections import deque


class PrequentialAccuracy:
    """The share of correct predictions among the last ``window`` labels."""

    def __init__(self, window: int = 200) -> None:
        if window < 1:
            raise ValueError(f"window: {window} must be at least 1")
        self.window = window
        self._hits: deque[bool] = deque(maxlen=window)
        self.seen = 0

    def update(self, hit: bool) -> None:
        self._hits.append(bool(hit))
        self.seen += 1

    @property
    def value(self) -> float | None:
        """The windowed accuracy, or ``None`` before the first label."""
        if not self._hits:
            return None
        return sum(self._hits) / len(self._hits)
