"""Verification: did the remedy fix the problem? Post-action windows against the baseline.

Kayenta-style: a verdict needs both statistical significance and a meaningful effect. Each
area's trigger names its test (:class:`~perfloop.areas.base.VerificationTest`): what a window
contributes (``observe``) and the verdict (``verify``). Two tests are here:

- :data:`SAMPLE_SHIFT`: the observations are the raw points each window kept (its bounded sample of
  the area's trigger metric). A one-sided Mann-Whitney U test (scipy) asks whether the post-action
  observations are better than the baseline's (lower memory or latency, higher throughput or
  accuracy); the effect size is the relative change of the medians in the good direction.
- :data:`RATE_SHIFT`, for a ratio of counts such as the cache hit rate (its trigger reads two
  metrics, the successes and the failures): a one-sided two-proportion z-test on the summed
  counts; the effect is the relative change of the rate.
- *resolved*: significant at ``confidence``, effect at least ``min_effect``, **and** the
  area's clear condition holds in every post window. *improved*: significant and at least
  ``min_effect`` better, but not clear. *regressed*: significantly and at least
  ``min_effect`` worse. *unchanged*: anything else (a significant change too small to matter
  is unchanged, in either direction). *no_data*: fewer than ``min_observations``
  observations on either side.

>>> from perfloop.schemas.config import PerfloopConfig
>>> cfg = PerfloopConfig()
>>> base = [WindowObservation(100.0, 700.0, [650.0, 700.0, 720.0, 690.0, 710.0] * 4)]
>>> post = [WindowObservation(130.0, 200.0, [190.0, 200.0, 210.0, 205.0, 195.0] * 4)]
>>> result = SAMPLE_SHIFT.verify(cfg.detection.latency, base, post, cfg.verification)
>>> result.verdict, result.clear_condition_met, round(result.effect_size, 2)
('resolved', True, 0.71)
>>> SAMPLE_SHIFT.verify(cfg.detection.latency, base, [], cfg.verification).verdict
'no_data'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

from perfloop.areas.view import SeriesView
from perfloop.schemas.config import ThresholdRule, VerificationConfig
from perfloop.schemas.messages import SampleSummary

if TYPE_CHECKING:
    from perfloop.areas.base import Trigger


@dataclass(frozen=True)
class WindowObservation:
    """One window's view of an area: its start, its trigger statistic (the value detection
    compares with the threshold), and its raw observations. For the cache area
    ``counts`` holds (hits, misses) and ``sample`` is unused."""

    start: float
    stat: float | None
    sample: list[float] = field(default_factory=list)
    counts: tuple[float, float] | None = None

    def to_json(self) -> list[object]:
        return [self.start, self.stat, self.sample, list(self.counts) if self.counts else None]

    @classmethod
    def from_json(cls, data: list[object]) -> WindowObservation:
        start, stat, sample, counts = data
        return cls(
            float(start),  # type: ignore[arg-type]
            None if stat is None else float(stat),  # type: ignore[arg-type]
            [float(x) for x in sample],  # type: ignore[attr-defined]
            None if counts is None else (float(counts[0]), float(counts[1])),  # type: ignore[index]
        )


@dataclass(frozen=True)
class VerificationResult:
    verdict: str
    baseline: SampleSummary
    post: SampleSummary
    statistic: float | None
    p_value: float | None
    effect_size: float | None
    clear_condition_met: bool


def _summary(windows: list[WindowObservation], values: list[float]) -> SampleSummary:
    stats_ = [w.stat for w in windows if w.stat is not None]
    if not values:
        return SampleSummary(n=0, stat=float(np.median(stats_)) if stats_ else None)
    arr = np.asarray(values, dtype=float)
    return SampleSummary(
        n=int(arr.size),
        median=float(np.median(arr)),
        mean=float(arr.mean()),
        p95=float(np.percentile(arr, 95)),
        stat=float(np.median(stats_)) if stats_ else None,
    )


def _clear(rule: ThresholdRule, post: list[WindowObservation]) -> bool:
    stats_ = [w.stat for w in post]
    if not stats_ or any(s is None for s in stats_):
        return False
    if rule.direction == "above":
        return all(s is not None and s < rule.clear for s in stats_)
    return all(s is not None and s > rule.clear for s in stats_)


def _verdict(significant_better: bool, significant_worse: bool, effect: float, clear: bool,
             cfg: VerificationConfig) -> str:  # fmt: skip
    if significant_better and effect >= cfg.min_effect:
        return "resolved" if clear else "improved"
    if significant_worse and -effect >= cfg.min_effect:
        return "regressed"
    return "unchanged"


class SampleShift:
    """The test of a trigger whose windows keep raw points (see the module docstring)."""

    def observe(self, view: SeriesView, trigger: Trigger) -> WindowObservation:
        sample = [x for metric in trigger.metrics for x in view.sample(metric)]
        return WindowObservation(view.window.start, trigger.read(view), sample)

    def verify(
        self,
        rule: ThresholdRule,
        baseline: list[WindowObservation],
        post: list[WindowObservation],
        cfg: VerificationConfig,
    ) -> VerificationResult:
        return _verify_sample(rule, baseline, post, cfg)


class RateShift:
    """The test of a rate of counts: the trigger's two metrics are the successes and the
    failures (see the module docstring)."""

    def observe(self, view: SeriesView, trigger: Trigger) -> WindowObservation:
        good, bad = (view.sum(metric) or 0.0 for metric in trigger.metrics)
        return WindowObservation(view.window.start, trigger.read(view), [], (good, bad))

    def verify(
        self,
        rule: ThresholdRule,
        baseline: list[WindowObservation],
        post: list[WindowObservation],
        cfg: VerificationConfig,
    ) -> VerificationResult:
        return _verify_rate(baseline, post, cfg, _clear(rule, post), 1.0 - cfg.confidence)


SAMPLE_SHIFT = SampleShift()
RATE_SHIFT = RateShift()


def _verify_sample(
    rule: ThresholdRule,
    baseline: list[WindowObservation],
    post: list[WindowObservation],
    cfg: VerificationConfig,
) -> VerificationResult:
    clear = _clear(rule, post)
    alpha = 1.0 - cfg.confidence
    base_values = [x for w in baseline for x in w.sample]
    post_values = [x for w in post for x in w.sample]
    base_sum, post_sum = _summary(baseline, base_values), _summary(post, post_values)
    if len(base_values) < cfg.min_observations or len(post_values) < cfg.min_observations:
        return VerificationResult("no_data", base_sum, post_sum, None, None, None, False)
    lower_is_better = rule.direction == "above"
    better = "less" if lower_is_better else "greater"
    worse = "greater" if lower_is_better else "less"
    test = stats.mannwhitneyu(post_values, base_values, alternative=better)
    p_worse = float(stats.mannwhitneyu(post_values, base_values, alternative=worse).pvalue)
    b_med, p_med = float(np.median(base_values)), float(np.median(post_values))
    scale = abs(b_med) if b_med else 1.0
    effect = (b_med - p_med) / scale if lower_is_better else (p_med - b_med) / scale
    verdict = _verdict(float(test.pvalue) < alpha, p_worse < alpha, effect, clear, cfg)
    return VerificationResult(
        verdict, base_sum, post_sum, float(test.statistic), float(test.pvalue), effect, clear
    )


def _verify_rate(
    baseline: list[WindowObservation],
    post: list[WindowObservation],
    cfg: VerificationConfig,
    clear: bool,
    alpha: float,
) -> VerificationResult:
    def totals(windows: list[WindowObservation]) -> tuple[float, float]:
        hits = sum(w.counts[0] for w in windows if w.counts)
        misses = sum(w.counts[1] for w in windows if w.counts)
        return hits, misses

    (bh, bm), (ph, pm) = totals(baseline), totals(post)
    base_sum = SampleSummary(n=int(bh + bm), stat=bh / (bh + bm) if bh + bm else None)
    post_sum = SampleSummary(n=int(ph + pm), stat=ph / (ph + pm) if ph + pm else None)
    if bh + bm < cfg.min_observations or ph + pm < cfg.min_observations:
        return VerificationResult("no_data", base_sum, post_sum, None, None, None, False)
    p1, p2 = bh / (bh + bm), ph / (ph + pm)
    pooled = (bh + ph) / (bh + bm + ph + pm)
    se = math.sqrt(pooled * (1 - pooled) * (1 / (bh + bm) + 1 / (ph + pm)))
    z = (p2 - p1) / se if se > 0 else (math.inf if p2 > p1 else -math.inf if p2 < p1 else 0.0)
    p_better = float(stats.norm.sf(z))
    p_worse = float(stats.norm.cdf(z))
    effect = (p2 - p1) / p1 if p1 > 0 else (math.inf if p2 > 0 else 0.0)
    effect = min(effect, 1e6)
    verdict = _verdict(p_better < alpha, p_worse < alpha, effect, clear, cfg)
    z_out = max(min(z, 1e6), -1e6)
    return VerificationResult(verdict, base_sum, post_sum, z_out, p_better, effect, clear)
