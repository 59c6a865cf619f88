"""Stopping a command cleanly: SIGINT and SIGTERM set an event the command's loop watches.

A second signal of either kind raises ``KeyboardInterrupt`` for a user who will not wait.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


def stop_on_signals() -> threading.Event:
    """An event set by the first SIGINT or SIGTERM (call from the main thread)."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
    return stop
