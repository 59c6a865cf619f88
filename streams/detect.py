"""Threshold detection with hysteresis over closed windows.

For each (service, signal) the :class:`Detector` counts consecutive windows beyond the rule's
``fire`` value and consecutive windows back past its ``clear`` value; a window without the
signal counts neither way. When a signal has been firing for ``for_windows`` windows and its
area has no open breach, a :class:`perfloop.schemas.messages.Breach` is emitted, once; the breach
stays open until that signal has been clear for ``clear_windows`` windows, which emits a
:class:`BreachCleared`. Values between ``clear`` and ``fire`` break both runs, so a value
oscillating around the threshold neither opens nor closes a breach repeatedly.

Breach ids are ``f"{service}:{area}:{first window start in ms}"``, the first window being the
first of the firing run; windows of a service that arrive again (or out of order) are ignored.

>>> from perfloop.schemas.messages import SeriesAggregate, WindowAggregate
>>> def window(i, p95):
...     s = SeriesAggregate(metric="latency_ms", count=1, sum=p95, min=p95, max=p95, mean=p95,
...                         last=p95, p50=p95, p95=p95, p99=p95)
...     start = 1_700_000_000.0 + 10 * i
...     return WindowAggregate(window_id=f"api:{i}", service="api", start=start, end=start + 10,
...                            series=[s])
>>> det = Detector()
>>> [e.breach_id for i, v in enumerate([600, 650, 700]) for e in det.observe(window(i, v))]
['api:latency:1700000000000']
>>> [type(e).__name__ for i, v in enumerate([400, 400], 3) for e in det.observe(window(i, v))]
['BreachCleared']
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from perfloop.schemas.config import DetectionConfig, ThresholdRule
from perfloop.schemas.messages import Breach, WindowAggregate
from perfloop.streams.signals import Signal, window_signals

STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class BreachCleared:
    """An open breach whose signal has been back past ``clear`` for ``windows`` windows."""

    breach_id: str
    service: str
    area: str
    signal: str
    observed: float
    threshold: float
    window_start: float
    window_end: float
    windows: int

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(slots=True)
class _Run:
    """Consecutive firing / clear windows of one (service, signal)."""

    firing: int = 0
    first_start: float = 0.0
    clear: int = 0


@dataclass(slots=True)
class _Open:
    breach_id: str
    signal: str


def breach_id(service: str, area: str, first_window_start: float) -> str:
    """The deterministic id of a breach."""
    return f"{service}:{area}:{round(first_window_start * 1000)}"


def _beyond(value: float, limit: float, rule: ThresholdRule) -> bool:
    return value > limit if rule.direction == "above" else value < limit


def _back(value: float, limit: float, rule: ThresholdRule) -> bool:
    return value < limit if rule.direction == "above" else value > limit


class Detector:
    """Per-(service, area) hysteresis over closed windows (see the module docstring)."""

    def __init__(self, config: DetectionConfig | None = None) -> None:
        self.config = config or DetectionConfig()
        self._runs: dict[tuple[str, str], _Run] = {}
        self._open: dict[tuple[str, str], _Open] = {}
        self._last_start: dict[str, float] = {}
        self._configs: dict[str, DetectionConfig] = {}

    def config_for(self, service: str) -> DetectionConfig:
        """The detection configuration of ``service`` (overrides applied, cached)."""
        cfg = self._configs.get(service)
        if cfg is None:
            cfg = self._configs[service] = self.config.for_service(service)
        return cfg

    def open_breaches(self) -> dict[tuple[str, str], str]:
        """(service, area) -> id of the open breach."""
        return {key: o.breach_id for key, o in sorted(self._open.items())}

    def observe(self, agg: WindowAggregate) -> list[Breach | BreachCleared]:
        """Feed one closed window; return the breaches it opens and those it clears."""
        service = agg.service
        last = self._last_start.get(service)
        if last is not None and agg.start <= last:
            return []
        self._last_start[service] = agg.start
        signals = window_signals(agg, self.config_for(service))
        by_name: dict[str, Signal] = {}
        runs = self._runs
        for sig in signals:
            by_name[sig.name] = sig
            run = runs.get((service, sig.name)) or runs.setdefault((service, sig.name), _Run())
            if _beyond(sig.value, sig.rule.fire, sig.rule):
                if run.firing == 0:
                    run.first_start = agg.start
                run.firing += 1
            else:
                run.firing = 0
            run.clear = run.clear + 1 if _back(sig.value, sig.rule.clear, sig.rule) else 0
        events: list[Breach | BreachCleared] = []
        for area in dict.fromkeys(sig.area for sig in signals):
            opened = self._open.get((service, area))
            if opened is not None:
                sig_open = by_name.get(opened.signal)
                run = self._runs[(service, opened.signal)]
                if sig_open is None or run.clear < sig_open.rule.clear_windows:
                    continue
                events.append(self._cleared(agg, area, opened, sig_open, run.clear))
                del self._open[(service, area)]
            for sig in signals:
                run = self._runs[(service, sig.name)]
                if sig.area == area and run.firing >= sig.rule.for_windows:
                    events.append(self._breach(agg, sig, run))
                    break
        return events

    def _breach(self, agg: WindowAggregate, sig: Signal, run: _Run) -> Breach:
        bid = breach_id(agg.service, sig.area, run.first_start)
        self._open[(agg.service, sig.area)] = _Open(bid, sig.name)
        return Breach(
            breach_id=bid,
            service=agg.service,
            area=sig.area,
            signal=sig.name,
            observed=sig.value,
            threshold=sig.rule.fire,
            direction=sig.rule.direction,
            window_start=agg.start,
            window_end=agg.end,
            first_window_start=run.first_start,
            windows=run.firing,
        )

    @staticmethod
    def _cleared(
        agg: WindowAggregate, area: str, opened: _Open, sig: Signal, windows: int
    ) -> BreachCleared:
        return BreachCleared(
            breach_id=opened.breach_id,
            service=agg.service,
            area=area,
            signal=sig.name,
            observed=sig.value,
            threshold=sig.rule.clear,
            window_start=agg.start,
            window_end=agg.end,
            windows=windows,
        )

    # -- state ---------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The detection state as JSON-able data (the configuration is not part of it)."""
        return {
            "version": STATE_VERSION,
            "last_start": dict(sorted(self._last_start.items())),
            "runs": [
                [svc, sig, r.firing, r.first_start, r.clear]
                for (svc, sig), r in sorted(self._runs.items())
            ],
            "open": [
                [svc, area, o.breach_id, o.signal] for (svc, area), o in sorted(self._open.items())
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], config: DetectionConfig | None = None) -> Detector:
        """The detector that :meth:`to_json` described, with ``config``."""
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"version: detector state version {data.get('version')!r} is not 1")
        det = cls(config)
        det._last_start = {k: float(v) for k, v in data["last_start"].items()}
        for svc, sig, firing, first_start, clear in data["runs"]:
            det._runs[(svc, sig)] = _Run(int(firing), float(first_start), int(clear))
        for svc, area, bid, sig in data["open"]:
            det._open[(svc, area)] = _Open(bid, sig)
        return det

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes, config: DetectionConfig | None = None) -> Detector:
        return cls.from_json(json.loads(data), config)
