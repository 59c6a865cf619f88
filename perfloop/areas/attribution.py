"""The attribution area: attribution quality out of bounds.

- triggers ``attribution_entropy.mean`` (above 0.85), ``attribution_sparsity.mean`` (below
  0.20) and ``attribution_accuracy.mean`` (below 0.80): each measure's count-weighted mean,
  each with its own rule (``[detection] attribution_entropy``, ...), judged on the window's
  raw points;
- causes entropy, sparsity, accuracy, measured by how bad each measure is relative to its
  configured rule: ``entropy_ratio`` (entropy over its fire threshold), ``density_ratio``
  ((1 - sparsity) over (1 - its threshold)), ``error_ratio`` ((1 - accuracy) over
  (1 - its threshold)); the whole is their sum;
- simulated: a fault of level 1 pushes its measure past the threshold.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Final

import numpy as np

from perfloop.actions.remedy import B, E, F, N, Remedy, by_cause, remedies_of
from perfloop.areas.base import Area, Array, Levels, Trigger
from perfloop.areas.view import SeriesView
from perfloop.schemas.config import DetectionConfig
from perfloop.streams.verify import SAMPLE_SHIFT

_r = remedies_of("attribution")

#: cause -> its remedies, in the flowchart's order.
REMEDIES: Final[dict[str, tuple[Remedy, ...]]] = by_cause(
    _r("entropy", "adjust_thresholds", "Set the attribution cut-off threshold.",
       "attribution_entropy", "down",
       F("threshold", 0.1, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)),
    _r("entropy", "feature_selection", "Keep only the most informative features.",
       "attribution_entropy", "down",
       N("max_features", 20, low=1, high=10_000),
       E("method", "mutual_info", ("mutual_info", "variance", "l1"))),
    _r("entropy", "model_tuning", "Retune the model's learning rate.",
       "attribution_entropy", "down",
       F("learning_rate_factor", 0.5, low=0.0, high=10.0, low_inclusive=False)),
    _r("sparsity", "l1_regularization", "Add L1 regularization to sparsify the model.",
       "attribution_sparsity", "up",
       F("alpha", 0.01, low=0.0, high=10.0, low_inclusive=False)),
    _r("sparsity", "threshold_tuning", "Zero attributions below a threshold.",
       "attribution_sparsity", "up",
       F("threshold", 0.05, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)),
    _r("sparsity", "feature_pruning", "Prune the least important features.",
       "attribution_sparsity", "up",
       F("keep_fraction", 0.5, low=0.0, high=1.0, low_inclusive=False)),
    _r("accuracy", "model_calibration", "Recalibrate the model's probabilities.",
       "attribution_accuracy", "up",
       E("method", "isotonic", ("isotonic", "sigmoid", "temperature"))),
    _r("accuracy", "data_quality", "Drop invalid and incomplete training rows.",
       "attribution_accuracy", "up",
       B("drop_invalid", True), F("max_missing_fraction", 0.1, low=0.0, high=1.0)),
    _r("accuracy", "validation_set", "Refresh the held-out validation set.",
       "attribution_accuracy", "up",
       F("holdout_fraction", 0.2, low=0.0, high=0.5, low_inclusive=False),
       B("refresh", True)),
)  # fmt: skip

#: (cause, remedy) -> (probability it removes the fault, the part of it it removes else) in
#: the simulator.
EFFICACY: Final[dict[tuple[str, str], tuple[float, float]]] = {
    ("entropy", "adjust_thresholds"): (0.35, 0.20),
    ("entropy", "feature_selection"): (0.80, 0.40),
    ("entropy", "model_tuning"): (0.50, 0.30),
    ("sparsity", "l1_regularization"): (0.55, 0.30),
    ("sparsity", "threshold_tuning"): (0.80, 0.40),
    ("sparsity", "feature_pruning"): (0.40, 0.20),
    ("accuracy", "model_calibration"): (0.50, 0.30),
    ("accuracy", "data_quality"): (0.80, 0.40),
    ("accuracy", "validation_set"): (0.30, 0.00),
}
MEASURES: Final = ("attribution_entropy", "attribution_sparsity", "attribution_accuracy")
_DEFAULTS = DetectionConfig()


def _mean_of(metric: str) -> Callable[[SeriesView], float | None]:
    def read(view: SeriesView) -> float | None:
        return view.mean(metric)

    return read


class Profile:
    """The simulated service's attribution quality (see the module docstring)."""

    efficacy = EFFICACY

    def baseline(self, scale: float, jitter: Callable[[float], float]) -> dict[str, float]:
        return {
            "entropy": jitter(0.55),
            "sparsity": jitter(0.42),
            "accuracy": 1.0 - jitter(0.09),
            "features": jitter(40.0),
            "calibration": jitter(0.03),
        }

    def emit(
        self, base: Mapping[str, float], load: Array, levels: Levels, rng: np.random.Generator,
        target_rps: float, rate: float,
    ) -> dict[str, Array]:  # fmt: skip
        ent, spa, acc = levels("entropy"), levels("sparsity"), levels("accuracy")
        noise = rng.normal(0.0, 1.0, (5, load.size))
        features = base["features"] * (1 + 1.5 * ent + 1.0 * spa) + 2.0 * noise[3]
        return {
            "attribution_entropy": np.clip(base["entropy"] + 0.4 * ent + 0.02 * noise[0], 0, 1),
            "attribution_sparsity": np.clip(base["sparsity"] - 0.3 * spa + 0.02 * noise[1], 0, 1),
            "attribution_accuracy": np.clip(base["accuracy"] - 0.18 * acc + 0.01 * noise[2], 0, 1),
            "feature_count": np.round(np.maximum(features, 1.0)),
            "calibration_error": np.clip(
                base["calibration"] + 0.12 * acc + 0.005 * noise[4], 0.0, 1.0
            ),
        }


class Synthetic:
    """Seeded attribution windows (see :mod:`perfloop.models.synthetic`): each cause's part
    is its measure's badness relative to the default rule."""

    base = (0.12, 0.50)

    def window(self, parts: list[float], rng: random.Random) -> dict[str, float]:
        entropy = _DEFAULTS.attribution_entropy.fire
        sparsity = _DEFAULTS.attribution_sparsity.fire
        accuracy = _DEFAULTS.attribution_accuracy.fire
        return {
            "attribution_entropy": min(entropy * parts[0], 1.0),
            "attribution_sparsity": max(1.0 - (1.0 - sparsity) * parts[1], 0.0),
            "attribution_accuracy": max(1.0 - (1.0 - accuracy) * parts[2], 0.0),
            "feature_count": rng.uniform(20, 200),
            "calibration_error": rng.uniform(0.01, 0.1),
        }

    def quiet(self, rng: random.Random) -> dict[str, float]:
        return {
            "attribution_entropy": rng.uniform(0.3, 0.8),
            "attribution_sparsity": rng.uniform(0.3, 0.6),
            "attribution_accuracy": rng.uniform(0.85, 0.95),
        }


class Attribution:
    """The attribution area (see the module docstring)."""

    name = "attribution"
    causes: Mapping[str, tuple[Remedy, ...]] = REMEDIES
    triggers = tuple(Trigger(f"{m}.mean", m, (m,), _mean_of(m), SAMPLE_SHIFT) for m in MEASURES)
    cause_metrics = (*MEASURES, "feature_count", "calibration_error")
    signals = (*cause_metrics, "entropy_ratio", "density_ratio", "error_ratio")
    components: Mapping[str, str] = {
        "entropy": "entropy_ratio",
        "sparsity": "density_ratio",
        "accuracy": "error_ratio",
    }
    profile = Profile()
    synthetic = Synthetic()

    def read(self, view: SeriesView) -> dict[str, float | None]:
        out = {m: view.mean(m) for m in self.cause_metrics}
        entropy, sparsity, accuracy = (out[m] for m in MEASURES)
        e_fire, s_fire, a_fire = (view.rule(m).fire for m in MEASURES)
        out["entropy_ratio"] = None if entropy is None else entropy / e_fire
        out["density_ratio"] = None if sparsity is None else (1.0 - sparsity) / (1.0 - s_fire)
        out["error_ratio"] = None if accuracy is None else (1.0 - accuracy) / (1.0 - a_fire)
        return out

    def whole(self, view: SeriesView, readings: Mapping[str, float | None]) -> float | None:
        return None


AREA: Final[Area] = Attribution()
