"""Throughput of the pure stream core: decode -> windows -> detect, in one process.

Run ``python bench/bench_core.py`` (``--help`` for sizes). Prints points/s for columnar batch
messages and for single-point messages, the share of time per stage, and the bytes of window
state per active series (serialized, and in memory as measured by tracemalloc).
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from dataclasses import dataclass

import numpy as np

from perfloop.schemas.config import DetectionConfig, WindowsConfig
from perfloop.schemas.vocabulary import non_negative_metrics
from perfloop.streams.decode import MetricDecoder, RawRecord
from perfloop.streams.detect import Detector
from perfloop.streams.windows import PartitionWindows

T0 = 1_700_000_000.0
NOW = T0 + 1e6
METRICS = sorted(non_negative_metrics())


@dataclass
class Timing:
    points: int = 0
    decode: float = 0.0
    windows: float = 0.0
    detect: float = 0.0
    windows_closed: int = 0
    breaches: int = 0

    @property
    def total(self) -> float:
        return self.decode + self.windows + self.detect


def _values(rng: np.random.Generator, metric_index: int, n: int) -> list[float]:
    scale = 10.0 ** (metric_index % 7)
    return np.round(rng.lognormal(0.0, 0.8, n) * scale, 3).tolist()


def columnar_records(services: int, metrics: int, points: int, rounds: int) -> list[RawRecord]:
    """``rounds`` rounds; each has one message of ``points`` points per series, 10 s long."""
    rng = np.random.default_rng(0)
    out: list[RawRecord] = []
    step = 10.0 / points
    for r in range(rounds):
        ts = np.round(T0 + 10.0 * r + 0.005 + step * np.arange(points), 3).tolist()
        for s in range(services):
            for m in range(metrics):
                body = {
                    "service": f"svc-{s:03d}",
                    "metric": METRICS[m],
                    "ts": ts,
                    "values": _values(rng, m, points),
                }
                out.append(
                    RawRecord(json.dumps(body).encode(), f"svc-{s:03d}".encode(), 0, len(out))
                )
    return out


def point_records(services: int, metrics: int, per_series: int) -> list[RawRecord]:
    rng = np.random.default_rng(1)
    out: list[RawRecord] = []
    for i in range(per_series):
        ts = round(T0 + i * 0.25, 3)
        for s in range(services):
            for m in range(metrics):
                body = {
                    "service": f"svc-{s:03d}",
                    "metric": METRICS[m],
                    "value": _values(rng, m, 1)[0],
                    "ts": ts,
                }
                out.append(RawRecord(json.dumps(body).encode(), None, 0, len(out)))
    return out


def run(records: list[RawRecord], batch: int) -> Timing:
    dec = MetricDecoder()
    pw = PartitionWindows(WindowsConfig())
    det = Detector(DetectionConfig(throughput_target_rps=50.0))
    timing = Timing()
    clock = time.perf_counter
    for i in range(0, len(records), batch):
        t0 = clock()
        decoded = dec.decode(records[i : i + batch], now=NOW)
        t1 = clock()
        update = pw.update(decoded, wall=float(i))
        t2 = clock()
        for agg in update.closed:
            timing.breaches += len(det.observe(agg))
        t3 = clock()
        timing.points += decoded.points
        timing.windows_closed += len(update.closed)
        timing.decode += t1 - t0
        timing.windows += t2 - t1
        timing.detect += t3 - t2
    return timing


def state_size(services: int, metrics: int, points: int) -> tuple[float, float, int]:
    """(serialized bytes, in-memory bytes) of window state per open (series, window)."""
    records = columnar_records(services, metrics, points, rounds=1)
    decoded = MetricDecoder().decode(records, now=NOW)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    pw = PartitionWindows(WindowsConfig())
    pw.update(decoded)
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    cells = pw.open_cells
    return len(pw.to_bytes()) / cells, held / cells, cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--points", type=int, default=1000, help="points per batch message")
    parser.add_argument("--rounds", type=int, default=2, help="10-s rounds of batch messages")
    parser.add_argument("--batch", type=int, default=100, help="records per decode call")
    parser.add_argument("--single", type=int, default=50, help="single points per series")
    parser.add_argument(
        "--single-batch", type=int, default=1000, help="single-point records per decode call"
    )
    args = parser.parse_args()
    if not 1 <= args.metrics <= len(METRICS):
        parser.error(f"--metrics: {args.metrics} is not between 1 and {len(METRICS)}")

    rows = []
    recs = columnar_records(args.services, args.metrics, args.points, args.rounds)
    rows.append((f"columnar, {args.points} pts/msg, {args.batch} msgs/call", run(recs, args.batch)))
    del recs
    recs = point_records(args.services, args.metrics, args.single)
    rows.append((f"single point, {args.single_batch} msgs/call", run(recs, args.single_batch)))
    del recs

    print(f"{args.services} services x {args.metrics} metrics; 10 s windows, 2 s lateness")
    head = f"{'case':<42} {'points':>10} {'seconds':>8} {'points/s':>11} "
    print(head + f"{'decode':>7} {'windows':>8} {'detect':>7} {'closed':>7}")
    for name, t in rows:
        print(
            f"{name:<42} {t.points:>10,} {t.total:>8.2f} {t.points / t.total:>11,.0f} "
            f"{t.decode / t.total:>7.0%} {t.windows / t.total:>8.0%} {t.detect / t.total:>7.0%} "
            f"{t.windows_closed:>7,}"
        )
    ser, mem, cells = state_size(args.services, args.metrics, 100)
    print(
        f"window state per active series ({cells:,} open, 100 pts each): "
        f"{ser:,.0f} B serialized, {mem:,.0f} B in memory"
    )


if __name__ == "__main__":
    main()
