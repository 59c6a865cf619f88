"""Benchmark of learning in the closed loop: the whole loop in one process on the repeated
faults of ``learning``, no Kafka, in simulated event time.

Run: ``python bench/bench_learning.py [--scenario F] [--seed N] [--seeds K]``.

Prints every incident (service, area, injected and diagnosed cause, the remedies tried with
their verdicts and what they did to the simulated fault, the outcome, time to resolve), then
the mean number of remedies per resolved incident in the first and the second half of the
run (by incident opening order) and how often the best remedy for the cause came first. With
``--seeds K`` it also prints one summary row per seed (seed, seed + 1, ...).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from perfloop.simulator.harness import DEFAULT_SCENARIO, run_in_process  # noqa: E402
from perfloop.simulator.scenario import load_scenario  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(DEFAULT_SCENARIO))
    parser.add_argument("--seed", type=int, default=None, help="default: the scenario's")
    parser.add_argument("--seeds", type=int, default=1, help="summary rows for this many seeds")
    args = parser.parse_args()
    scenario = load_scenario(args.scenario)
    seed = scenario.simulation.seed if args.seed is None else args.seed
    rows = []
    for k in range(args.seeds):
        began = time.perf_counter()
        report = run_in_process(scenario, seed=seed + k)
        took = time.perf_counter() - began
        if k == 0:
            print(report.table())
            print(f"({took:.1f} s wall for {report.duration_s:.0f} s simulated)\n")
        (m1, n1), (m2, n2) = report.halves()
        b1, b2 = report.best_first()
        right, judged = report.diagnosis_accuracy()
        rows.append(
            (seed + k, len(report.incidents), len(report.resolved()),
             len(report.unresolved_faults()), f"{right}/{judged}", f"{m1:.2f}", f"{m2:.2f}",
             f"{b1:.0%}", f"{b2:.0%}")
        )  # fmt: skip
    if args.seeds > 1:
        head = (
            "seed", "incidents", "resolved", "faults unresolved", "diagnosis right",
            "remedies 1st half", "remedies 2nd half", "best first 1st", "best first 2nd",
        )  # fmt: skip
        table = [head, *[tuple(str(c) for c in r) for r in rows]]
        widths = [max(len(r[c]) for r in table) for c in range(len(head))]
        for r in table:
            print("  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
