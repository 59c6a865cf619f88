"""Running a simulation without Kafka and windowing its output like the worker does."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import numpy as np

from perfloop.models.features import extract_features
from perfloop.models.prior import RulePrior
from perfloop.schemas.config import DetectionConfig, WindowsConfig
from perfloop.schemas.messages import SeriesAggregate, WindowAggregate
from perfloop.simulator import Scenario, Simulation
from perfloop.streams.decode import MetricDecoder, RawRecord
from perfloop.streams.signals import Signal, window_signals
from perfloop.streams.windows import PartitionWindows

T0 = 1_700_000_000.0


def scenario(*faults: dict[str, Any], **simulation: Any) -> Scenario:
    return Scenario.model_validate({"simulation": simulation, "fault": list(faults)})


def run_for(sim: Simulation, seconds: float, step: float = 5.0) -> list[dict[str, Any]]:
    """Tick ``sim`` (speed 1, starting at T0) through ``seconds`` of simulated time."""
    out: list[dict[str, Any]] = []
    t = sim.clock + step if sim.started else 0.0
    while t <= seconds + 1e-9:
        out.extend(sim.tick(T0 + t / sim.speed))
        t += step
    return out


def windows_of(batches: list[dict[str, Any]], length_s: float = 10.0) -> dict[str, list[Any]]:
    """service -> its closed windows, oldest first, through the worker's decoder and windows."""
    records = [
        RawRecord(json.dumps(b).encode(), b["service"].encode(), 0, i)
        for i, b in enumerate(batches)
    ]
    decoded = MetricDecoder().decode(records, now=T0 + 10_000_000)
    assert not decoded.rejections, decoded.rejections[:3]
    pw = PartitionWindows(WindowsConfig(length_s=length_s, lateness_s=0.0))
    closed = pw.update(decoded).closed
    out: dict[str, list[WindowAggregate]] = defaultdict(list)
    for w in sorted(closed, key=lambda w: w.start):
        out[w.service].append(w)
    return dict(out)


def direct_windows(
    batches: list[dict[str, Any]], length_s: float = 10.0
) -> dict[str, list[WindowAggregate]]:
    """The same windows computed directly with exact statistics (no sketch): faster."""
    points: dict[tuple[str, str], list[tuple[list[float], list[float]]]] = defaultdict(list)
    for b in batches:
        points[(b["service"], b["metric"])].append((b["ts"], b["values"]))
    cells: dict[tuple[str, int], list[SeriesAggregate]] = defaultdict(list)
    for (service, metric), parts in sorted(points.items()):
        ts = np.concatenate([np.asarray(t) for t, _ in parts])
        values = np.concatenate([np.asarray(v) for _, v in parts])
        index = np.floor(ts / length_s).astype(np.int64)
        for wi in np.unique(index).tolist():
            v = values[index == wi]
            cells[(service, wi)].append(
                SeriesAggregate(
                    metric=metric, count=v.size, sum=float(v.sum()), min=float(v.min()),
                    max=float(v.max()), mean=float(v.mean()), last=float(v[-1]),
                    p50=float(np.percentile(v, 50)), p95=float(np.percentile(v, 95)),
                    p99=float(np.percentile(v, 99)),
                )
            )  # fmt: skip
    out: dict[str, list[WindowAggregate]] = defaultdict(list)
    last = max(wi for _, wi in cells)
    for (service, wi), series in sorted(cells.items()):
        if wi < last:  # the last window is still open
            start = wi * length_s
            out[service].append(
                WindowAggregate(
                    window_id=f"{service}:{start:.0f}", service=service, start=start,
                    end=start + length_s, series=series,
                )
            )  # fmt: skip
    return dict(out)


def signals(window: WindowAggregate, target: float = 200.0) -> dict[str, Signal]:
    """name -> signal of ``window``, with the service's throughput target configured."""
    config = DetectionConfig(throughput_target_rps=target)
    return {s.name: s for s in window_signals(window, config)}


def breached(signal: Signal) -> bool:
    rule = signal.rule
    return signal.value > rule.fire if rule.direction == "above" else signal.value < rule.fire


def prior_cause(area: str, history: list[WindowAggregate]) -> str:
    """The cause the rule prior names for ``area`` from ``history`` (last = breach window)."""
    probs = RulePrior(area).predict_proba_one(extract_features(area, history))
    return max(probs, key=lambda c: probs[c])
