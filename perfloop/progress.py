"""A progress line on stderr: messages, bytes and rate, rewritten in place on a terminal.

>>> import io
>>> out = io.StringIO()
>>> p = Progress("recorded", stream=out, interval_s=0, clock=iter([0.0, 2.0, 2.0]).__next__)
>>> p.add(10, 2_000_000)
>>> p.finish()
>>> out.getvalue()
'recorded 10 messages, 2.0 MB, 5 msg/s, 1.0 MB/s\\nrecorded 10 messages, 2.0 MB, 5 msg/s, \
1.0 MB/s\\n'
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    """Counts messages and bytes; shows them every ``interval_s`` seconds and at the end.

    On a terminal the line is rewritten in place; elsewhere (a log file) one line is written
    per interval. ``quiet`` counts without writing anything.
    """

    def __init__(
        self,
        verb: str,
        stream: TextIO | None = None,
        interval_s: float = 1.0,
        quiet: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.verb = verb
        self.stream = stream if stream is not None else sys.stderr
        self.interval_s = interval_s
        self.quiet = quiet
        self.clock = clock
        self.messages = 0
        self.bytes = 0
        self.started = clock()
        self._shown = self.started
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        if not self._tty:
            self.interval_s = max(self.interval_s, 10.0) if interval_s else 0.0

    def add(self, messages: int, nbytes: int) -> None:
        self.messages += messages
        self.bytes += nbytes
        if self.quiet:
            return
        now = self.clock()
        if now - self._shown >= self.interval_s:
            self._shown = now
            self._write(now, final=False)

    def line(self, now: float | None = None) -> str:
        elapsed = max((self.clock() if now is None else now) - self.started, 1e-9)
        return (
            f"{self.verb} {self.messages:,} messages, {self.bytes / 1e6:,.1f} MB, "
            f"{self.messages / elapsed:,.0f} msg/s, {self.bytes / 1e6 / elapsed:,.1f} MB/s"
        )

    def _write(self, now: float, final: bool) -> None:
        if self._tty:
            end = "\n" if final else ""
            self.stream.write(f"\r\033[K{self.line(now)}{end}")
        else:
            self.stream.write(self.line(now) + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if not self.quiet:
            self._write(self.clock(), final=True)
