"""Features: a fixed key set per area, finite values, missing metrics imputed and flagged."""

from __future__ import annotations

import math
import random

import pytest

from perfloop.models.features import conform, extract_features, feature_names
from perfloop.models.synthetic import synthetic_history
from perfloop.schemas.vocabulary import AREAS, causes_of


@pytest.mark.parametrize("area", AREAS)
def test_key_set_is_fixed_and_ordered(area: str) -> None:
    names = feature_names(area)
    assert len(names) == len(set(names))
    for cause in causes_of(area):
        history = synthetic_history(area, cause, random.Random(7))
        assert tuple(extract_features(area, history)) == names
    assert tuple(extract_features(area, [])) == names


@pytest.mark.parametrize("area", AREAS)
@pytest.mark.parametrize("drop", [0.0, 0.3, 0.8, 1.0])
def test_missing_metrics_are_imputed_and_flagged(area: str, drop: float) -> None:
    rng = random.Random(3)
    for cause in causes_of(area):
        for windows in (1, 2, 4):
            history = synthetic_history(area, cause, rng, windows=windows, drop=drop)
            x = extract_features(area, history)
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
