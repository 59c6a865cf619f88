"""Benchmark of the diagnoser: cost per breach and per label, and the river model choice.

Run: ``python bench/bench_diagnose.py [--diagnoses 500] [--labels 200] [--seeds 2]``.

Table 1, per area: the cost of ``Diagnoser.diagnose`` (features, decision, explanation and
the ``Diagnosis`` message) while the prior decides and once the ensemble decides (median and
p99 over ``--diagnoses`` breaches), and of ``learn_label`` (median and p99 over ``--labels``
labels).

Table 2, the measurement that chose the river model: every candidate (and the torch model
for comparison) learns drifting synthetic streams of every area (``--labels`` labels, then
an abrupt concept drift, then 300 more), test-then-train. Columns: mean accuracy over the
first labels, accuracy over the 50 labels before the drift, the lowest 50-label accuracy
after it, how many labels after the drift until the 50-label accuracy is back at 85 %, the
accuracy over the last 100 labels, and the learning cost; all averaged over areas and seeds.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from perfloop.models.base import CauseClassifier  # noqa: E402
from perfloop.models.diagnoser import Diagnoser  # noqa: E402
from perfloop.models.river_model import MODELS, RiverCauseClassifier  # noqa: E402
from perfloop.models.synthetic import labelled_stream, synthetic_breach, synthetic_history  # noqa: E402
from perfloop.models.torch_model import TorchCauseClassifier  # noqa: E402
from perfloop.schemas.config import DiagnosisConfig  # noqa: E402
from perfloop.schemas.vocabulary import areas, causes_of  # noqa: E402

AFTER_DRIFT = 300
SHORT = 50


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return statistics.median(ordered) * 1e3, p99 * 1e3


def _time_diagnoses(d: Diagnoser, area: str, n: int, rng: random.Random) -> list[float]:
    cases = []
    for i in range(n):
        history = synthetic_history(area, rng.choice(causes_of(area)), rng)
        cases.append((synthetic_breach(area, history, f"bench:{area}:{i}"), history))
    out = []
    for breach, history in cases:
        t0 = time.perf_counter()
        d.diagnose(breach, history, incident_id=breach.breach_id)
        out.append(time.perf_counter() - t0)
    return out


def cost_table(diagnoses: int, labels: int) -> None:
    print(f"diagnosis cost per breach ({diagnoses} breaches) and learn cost per label", end="")
    print(f" ({labels} labels), in ms; river model 'softmax' + torch, 1 thread")
    head = ("area", "prior p50", "prior p99", "model p50", "model p99", "learn p50", "learn p99")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    TorchCauseClassifier(("a", "b")).learn_one({"x": 1.0}, "a")  # warm torch up
    for area in areas():
        rng = random.Random(7)
        d = Diagnoser(DiagnosisConfig(min_labels=20))
        prior = _time_diagnoses(d, area, diagnoses, rng)
        learn = []
        for i, (x, y) in enumerate(labelled_stream(area, labels, seed=3)):
            t0 = time.perf_counter()
            d.learn_label(f"{area}-{i}", area, x, y)
            learn.append(time.perf_counter() - t0)
        model = _time_diagnoses(d, area, diagnoses, rng)
        cells = [*_ms(prior), *_ms(model), *_ms(learn)]
        print(f"| {area} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")


def _run(make: Callable[[str], CauseClassifier], area: str, labels: int, seed: int) -> list[float]:
    stream = labelled_stream(area, labels + AFTER_DRIFT, seed=seed, drift_at=labels)
    model = make(area)
    hits: list[bool] = []
    t0 = time.perf_counter()
    for x, y in stream:
        p = model.predict_proba_one(x)
        hits.append(max(p, key=lambda c: p[c]) == y)
        model.learn_one(x, y)
    cost = (time.perf_counter() - t0) / len(stream) * 1e3

    def acc(end: int, width: int = SHORT) -> float:
        part = hits[max(0, end - width) : end]
        return sum(part) / len(part)

    after = [acc(labels + k) for k in range(1, AFTER_DRIFT + 1)]
    dip = min(after)
    low = after.index(dip)
    back = next((k + 1 for k in range(low, AFTER_DRIFT) if after[k] >= 0.85), AFTER_DRIFT + 1)
    return [sum(hits[:labels]) / labels, acc(labels), dip, back, acc(len(hits), 100), cost]


def selection_table(labels: int, seeds: int) -> None:
    def river(model: str) -> Callable[[str], CauseClassifier]:
        return lambda area: RiverCauseClassifier(causes_of(area), model)

    candidates: dict[str, Callable[[str], CauseClassifier]] = {
        **{m: river(m) for m in MODELS},
        "torch": lambda a: TorchCauseClassifier(causes_of(a)),
    }
    print(f"\nriver model choice: {labels} labels, abrupt drift, {AFTER_DRIFT} more labels;")
    print(f"means over {len(areas())} areas x {seeds} seeds (accuracies test-then-train)")
    head = ("model", "acc first", f"acc {SHORT} pre-drift", f"min acc{SHORT} post", "labels to 85%",
            "acc last 100", "learn ms")  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, make in candidates.items():
        rows = [_run(make, a, labels, s) for a in areas() for s in range(1, seeds + 1)]
        means = [statistics.mean(col) for col in zip(*rows, strict=True)]
        worst_back = max(r[3] for r in rows)
        cells = [f"{means[0]:.3f}", f"{means[1]:.3f}", f"{means[2]:.3f}"]
        cells += [f"{means[3]:.0f} (worst {worst_back})", f"{means[4]:.3f}", f"{means[5]:.3f}"]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--diagnoses", type=int, default=500)
    parser.add_argument("--labels", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--skip-selection", action="store_true")
    args = parser.parse_args(argv)
    cost_table(args.diagnoses, args.labels)
    if not args.skip_selection:
        selection_table(args.labels, args.seeds)


if __name__ == "__main__":
    main()
