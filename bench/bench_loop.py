"""What the loop agent does for each closed window, in one process: the cost and the bytes.

Run ``python bench/bench_loop.py`` (``--help`` for sizes). For every window of every service
it does what the worker's loop agent does with a ``perfloop.windows`` record: read the
service's book from its table value, parse the window, :meth:`Loop.on_window`, and write the
book back; the window archive is a dict that counts what is written to it (each write and each
deletion is one record of the ``loop-windows`` changelog). It prints, for the steady state
(after ``verification.retained_windows`` windows, when the archive is full and drops one
window for each it adds): the median and 90th percentile time per window, the book's size,
the bytes written to both tables per window, and the archive's bytes held per service.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np

from perfloop.actions.planner import Planner
from perfloop.actions.signing import Keyring
from perfloop.schemas.config import PerfloopConfig
from perfloop.schemas.messages import SeriesAggregate, WindowAggregate
from perfloop.streams.incident import ServiceBook, WindowArchive
from perfloop.streams.loop import Loop

T0 = 1_760_000_000.0
SCALE = {
    "memory_bytes": 2e10, "latency_ms": 120.0, "throughput_rps": 150.0, "cpu_util": 0.6,
    "cache_hits": 50.0, "cache_misses": 5.0, "attribution_entropy": 0.5,
    "attribution_sparsity": 0.5, "attribution_accuracy": 0.9,
}  # fmt: skip


class CountingStore(dict[bytes, bytes]):
    """A dict that counts the bytes of the changelog records its writes and deletions make."""

    written = 0

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.written += len(key) + len(value)
        super().__setitem__(key, value)

    def pop(self, key: bytes, default: Any = None) -> Any:
        if key in self:
            self.written += len(key)  # a tombstone
        return super().pop(key, default)


def window(service: str, i: int, sample: int, rng: np.random.Generator) -> bytes:
    series = []
    for metric, scale in SCALE.items():
        values = scale * (1 + 0.1 * rng.standard_normal(sample))
        series.append(
            SeriesAggregate(
                metric=metric, count=sample, sum=float(values.sum()), min=float(values.min()),
                max=float(values.max()), mean=float(values.mean()), last=float(values[-1]),
                p50=float(np.median(values)), p95=float(np.percentile(values, 95)),
                p99=float(np.percentile(values, 99)), sample=values.tolist(),
            )
        )  # fmt: skip
    start = T0 + 10 * i
    return (
        WindowAggregate(
            window_id=f"{service}:{i}", service=service, start=start, end=start + 10, series=series
        )
        .model_dump_json()
        .encode()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--windows", type=int, default=200, help="per service, after the fill")
    args = parser.parse_args()
    config = PerfloopConfig.model_validate({"detection": {"throughput_target_rps": 100.0}})
    retained, sample = config.verification.retained_windows, config.windows.sample_size
    loop = Loop(config, Planner(config.planner), Keyring.parse("bench-loop-secret-0123456789"))
    store = CountingStore()
    archive = WindowArchive(store)
    rng = np.random.default_rng(0)
    books = {
        f"svc-{s}": ServiceBook(f"svc-{s}", archive=archive).dumps() for s in range(args.services)
    }
    times: list[float] = []
    written = 0
    for i in range(retained + 1 + args.windows):
        steady = i > retained
        before = store.written
        for service in books:
            value = window(service, i, sample, rng)
            t = time.perf_counter()
            book = ServiceBook.loads(books[service], archive)
            loop.on_window(book, WindowAggregate.model_validate_json(value))
            books[service] = book.dumps()
            if steady:
                times.append(time.perf_counter() - t)
                written += len(books[service])
        if steady:
            written += store.written - before
    count = len(times)
    held = sum(len(k) + len(v) for k, v in store.items()) / args.services
    book_size = statistics.median(len(b) for b in books.values())
    print(
        f"{args.services} services, {count:,} windows in the steady state "
        f"(retained_windows={retained}, sample_size={sample})"
    )
    print(f"{'median us/window':>18} {'p90 us/window':>14} {'book':>9} {'written/window':>15} "
          f"{'archive/service':>16}")  # fmt: skip
    print(
        f"{1e6 * statistics.median(times):>18,.0f} "
        f"{1e6 * statistics.quantiles(times, n=10)[-1]:>14,.0f} "
        f"{book_size:>7,.0f} B {written / count:>13,.0f} B {held:>14,.0f} B"
    )


if __name__ == "__main__":
    main()
