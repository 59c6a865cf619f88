"""Replay timing: pacing by recorded timestamps, and shifting event times.

A :class:`Pacer` sends the first message at once and each later one when as much wall time
has passed as recorded time, divided by the speed. Messages recorded earlier than one
already sent (another partition) go at once.

>>> slept = []
>>> clock = iter([0.0, 0.1, 0.2]).__next__
>>> pacer = Pacer(speed=10, clock=clock, sleep=slept.append)
>>> pacer.wait(1_700_000_000_000); pacer.wait(1_700_000_003_000); pacer.wait(1_700_000_001_000)
>>> [round(s, 3) for s in slept]
[0.2]

Event times in metric values move with ``--shift-values``: a JSON object whose ``ts`` is a
number or a list of numbers has them shifted; anything else is left byte for byte.

>>> shift_event_times(b'{"service":"api","metric":"m","value":1,"ts":1700000000}', 60.0)
b'{"service":"api","metric":"m","value":1,"ts":1700000060}'
>>> shift_event_times(b'{"ts":[1700000000.5,1700000001]}', 0.25)
b'{"ts":[1700000000.75,1700000001.25]}'
>>> shift_event_times(b'{"ts":"soon"}', 60.0)
b'{"ts":"soon"}'
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeGuard


def parse_speed(text: str) -> float | None:
    """``max`` (``None``: as fast as possible) or a positive factor such as ``1`` or ``60``."""
    if text.strip().lower() == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        raise ValueError(f"--speed: {text!r} is neither 'max' nor a number") from None
    if not speed > 0 or speed == float("inf"):
        raise ValueError(f"--speed: {text!r} must be a positive factor or 'max'")
    return speed


class Pacer:
    """Waits until a recorded timestamp is due at ``speed`` (``None``: never waits)."""

    def __init__(
        self,
        speed: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.speed = speed
        self.clock = clock
        self.sleep = sleep
        self._origin: tuple[int, float] | None = None

    def wait(self, timestamp_ms: int) -> None:
        if self.speed is None or timestamp_ms < 0:
            return
        if self._origin is None:
            self._origin = (timestamp_ms, self.clock())
            return
        first_ms, first_wall = self._origin
        due = first_wall + (timestamp_ms - first_ms) / 1000.0 / self.speed
        delay = due - self.clock()
        if delay > 0:
            self.sleep(delay)


def _is_number(value: Any) -> TypeGuard[int | float]:
    return type(value) in (int, float)


def _shifted(value: int | float, seconds: float) -> int | float:
    if type(value) is int and float(seconds).is_integer():
        return value + int(seconds)
    return value + seconds


def shift_event_times(raw: bytes | None, seconds: float) -> bytes | None:
    """``raw`` with its ``ts`` number or numbers moved by ``seconds``, else ``raw`` itself."""
    if raw is None or not seconds or b'"ts"' not in raw:
        return raw
    try:
        obj = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(obj, dict):
        return raw
    ts = obj.get("ts")
    if _is_number(ts):
        obj["ts"] = _shifted(ts, seconds)
    elif isinstance(ts, list) and ts and all(_is_number(t) for t in ts):
        obj["ts"] = [_shifted(t, seconds) for t in ts]
    else:
        return raw
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
