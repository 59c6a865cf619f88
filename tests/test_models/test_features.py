"""Features: a fixed key set per area, finite values, missing metrics imputed and flagged."""

from __future__ import annotations

import math
import random

import pytest

from perfloop.models.features import conform, extract_features, feature_names
from perfloop.models.synthetic import DETECTION, synthetic_history
from perfloop.schemas.vocabulary import areas, causes_of


@pytest.mark.parametrize("area", areas())
def test_key_set_is_fixed_and_ordered(area: str) -> None:
    names = feature_names(area)
    assert len(names) == len(set(names))
    for cause in causes_of(area):
        history = synthetic_history(area, cause, random.Random(7))
        assert tuple(extract_features(area, history, DETECTION)) == names
    assert tuple(extract_features(area, [])) == names


@pytest.mark.parametrize("area", areas())
@pytest.mark.parametrize("drop", [0.0, 0.3, 0.8, 1.0])
def test_missing_metrics_are_imputed_and_flagged(area: str, drop: float) -> None:
    rng = random.Random(3)
    for cause in causes_of(area):
        for windows in (1, 2, 4):
            history = synthetic_history(area, cause, rng, windows=windows, drop=drop)
            x = extract_features(area, history, DETECTION)
            assert all(math.isfinite(v) for v in x.values()), x
            flags = {k: v for k, v in x.items() if k.endswith("_missing")}
            assert set(flags.values()) <= {0.0, 1.0}
            if drop == 1.0:
                assert all(v == 1.0 for v in flags.values())
            if drop == 0.0:
                assert not any(flags.values())


def test_growth_and_shares_follow_the_windows() -> None:
    history = synthetic_history("memory", "workers", random.Random(0))
    x = extract_features("memory", history)
    shares = [x["share_cache"], x["share_model"], x["share_workers"]]
    assert all(0 < s < 1 for s in shares) and sum(shares) < 1
    assert x["memory_workers_bytes_growth"] > x["memory_cache_bytes_growth"]
    last, before = history[-1].get("memory_workers_bytes"), history[-2].get("memory_workers_bytes")
    assert last is not None and before is not None
    assert x["memory_workers_bytes_delta"] == pytest.approx(last.mean - before.mean)


def test_a_missing_level_is_carried_forward() -> None:
    history = synthetic_history("latency", "database", random.Random(0))
    last = history[-1]
    stripped = last.model_copy(
        update={"series": [s for s in last.series if s.metric != "latency_db_ms"]}
    )
    x = extract_features("latency", [*history[:-1], stripped])
    kept = history[-2].get("latency_db_ms")
    assert kept is not None
    assert x["latency_db_ms"] == pytest.approx(kept.mean)
    assert x["latency_db_ms_missing"] == 1.0 and x["latency_db_ms_delta"] == 0.0


def test_conform_keeps_exactly_the_area_keys() -> None:
    x = conform("cache", {"hit_rate": math.inf, "share_expiry": 0.5, "other": 1.0})
    assert tuple(x) == feature_names("cache")
    assert x["hit_rate"] == 0.0 and x["share_expiry"] == 0.5


def test_features_read_the_configured_rules_of_the_service() -> None:
    """The attribution ratios and the context of other areas are relative to the service's
    own thresholds, not the defaults."""
    history = synthetic_history("attribution", "entropy", random.Random(5))
    strict = DETECTION.model_validate(
        {
            **DETECTION.model_dump(),
            "services": {"svc": {"attribution_entropy": {"fire": 0.5, "clear": 0.45}}},
        }
    ).for_service("svc")
    default = extract_features("attribution", history, DETECTION)
    tight = extract_features("attribution", history, strict)
    entropy = history[-1].get("attribution_entropy")
    assert entropy is not None
    assert default["entropy_ratio"] == pytest.approx(entropy.mean / 0.85)
    assert tight["entropy_ratio"] == pytest.approx(entropy.mean / 0.5)
    latency = history[-1].get("latency_ms")
    assert latency is not None
    slow = DETECTION.model_copy(
        update={"latency": DETECTION.latency.model_copy(update={"fire": 100.0})}
    )
    assert extract_features("memory", history, slow)["ctx_latency"] == pytest.approx(
        latency.p95 / 100.0
    )


def test_labelled_series_reach_the_features_as_detection_reads_them() -> None:
    """A service that labels its latency by route is diagnosed on the worst route's p95, the
    number detection fired on."""
    history = synthetic_history("latency", "network", random.Random(2))
    last = history[-1]
    plain = last.get("latency_ms")
    assert plain is not None
    routes = [
        plain.model_copy(update={"labels": {"route": "/a"}}),
        plain.model_copy(update={"labels": {"route": "/b"}, "p95": plain.p95 * 3}),
    ]
    labelled = last.model_copy(
        update={"series": [s for s in last.series if s.metric != "latency_ms"] + routes}
    )
    x = extract_features("latency", [*history[:-1], labelled], DETECTION)
    assert x["latency_ms"] == pytest.approx(plain.p95 * 3) and x["latency_ms_missing"] == 0.0
