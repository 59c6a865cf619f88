"""The cache area: a cache hit rate below 80 %.

- trigger ``cache_hit_rate``: summed ``cache_hits`` over summed hits and ``cache_misses``,
  only when the window saw at least ``cache_min_requests`` requests (rule ``[detection]
  cache``); a rate of counts, so it is judged by a two-proportion test on the counts;
- causes capacity, expiry, key_space, measured by ``cache_evictions``, ``cache_expirations``
  and ``cache_cold_misses`` (misses neither evicted nor expired; counters are read as their
  sum over the window), parts of ``cache_misses``;
- simulated: Poisson counts of hits and of each kind of miss; a fault of level 1 turns
  :data:`FAULT_MISS` of the requests into misses of its kind.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Final

import numpy as np

from perfloop.actions.remedy import CODECS, B, E, F, N, Remedy, by_cause, remedies_of
from perfloop.areas.base import SYNTHETIC_COUNT, Area, Array, Levels, Trigger
from perfloop.areas.view import SeriesView
from perfloop.streams.verify import RATE_SHIFT

_r = remedies_of("cache")

#: cause -> its remedies, in the flowchart's order.
REMEDIES: Final[dict[str, tuple[Remedy, ...]]] = by_cause(
    _r("capacity", "increase_memory", "Grow the cache's memory by a factor.",
       "cache_evictions", "down",
       F("factor", 1.5, low=1.0, high=8.0, low_inclusive=False)),
    _r("capacity", "eviction_policy", "Switch the eviction policy.",
       "cache_evictions", "down", E("policy", "lfu", ("lru", "lfu", "arc", "tinylfu"))),
    _r("capacity", "compress_data", "Store cache values compressed to fit more.",
       "cache_size_bytes", "down", E("codec", "lz4", CODECS), N("level", 1, low=1, high=19)),
    _r("expiry", "adjust_ttl", "Scale entry lifetimes (above 1 lengthens them).",
       "cache_expirations", "down",
       F("factor", 2.0, low=0.0, high=10.0, low_inclusive=False)),
    _r("expiry", "predictive_load", "Preload keys predicted to be requested soon.",
       "cache_misses", "down",
       F("horizon_s", 300.0, low=0.0, high=3600.0, low_inclusive=False),
       N("top_keys", 1000, low=1, high=1_000_000)),
    _r("expiry", "background_refresh", "Refresh entries before they expire.",
       "cache_expirations", "down",
       F("refresh_ahead", 0.2, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)),
    _r("key_space", "key_strategy", "Change how cache keys are built.",
       "cache_misses", "down", E("strategy", "normalize", ("normalize", "hash", "prefix"))),
    _r("key_space", "shard_data", "Split the key space into shards.",
       "cache_misses", "down", N("shards", 4, low=2, high=1024)),
    _r("key_space", "optimize_storage", "Compact stored keys and values.",
       "cache_size_bytes", "down", B("compact", True)),
)  # fmt: skip

#: (cause, remedy) -> (probability it removes the fault, the part of it it removes else) in
#: the simulator.
EFFICACY: Final[dict[tuple[str, str], tuple[float, float]]] = {
    ("capacity", "increase_memory"): (0.60, 0.30),
    ("capacity", "eviction_policy"): (0.45, 0.20),
    ("capacity", "compress_data"): (0.80, 0.40),
    ("expiry", "adjust_ttl"): (0.50, 0.30),
    ("expiry", "predictive_load"): (0.40, 0.20),
    ("expiry", "background_refresh"): (0.85, 0.40),
    ("key_space", "key_strategy"): (0.55, 0.30),
    ("key_space", "shard_data"): (0.35, 0.15),
    ("key_space", "optimize_storage"): (0.75, 0.30),
}
#: A level-1 cache fault turns this fraction of the requests into misses of its kind.
FAULT_MISS: Final[float] = 0.25


def _hit_rate(view: SeriesView) -> float | None:
    hits, misses = view.sum("cache_hits"), view.sum("cache_misses")
    if hits is None and misses is None:
        return None
    requests = (hits or 0.0) + (misses or 0.0)
    if requests > 0 and requests >= view.config.cache_min_requests:
        return (hits or 0.0) / requests
    return None


class Profile:
    """The simulated service's cache (see the module docstring)."""

    efficacy = EFFICACY

    def baseline(self, scale: float, jitter: Callable[[float], float]) -> dict[str, float]:
        return {
            "requests_per_s": jitter(400.0 * scale),
            "evict": jitter(0.012),
            "expire": jitter(0.018),
            "cold": jitter(0.025),
            "keys": jitter(50_000 * scale),
            "capacity_bytes": jitter(2e9 * scale),
        }

    def emit(
        self, base: Mapping[str, float], load: Array, levels: Levels, rng: np.random.Generator,
        target_rps: float, rate: float,
    ) -> dict[str, Array]:  # fmt: skip
        n = load.size
        cap, exp, key = levels("capacity"), levels("expiry"), levels("key_space")
        requests = base["requests_per_s"] * load / rate
        f_evict = base["evict"] + FAULT_MISS * cap
        f_expire = base["expire"] + FAULT_MISS * exp
        f_cold = base["cold"] + FAULT_MISS * key
        squeeze = np.maximum((f_evict + f_expire + f_cold) / 0.95, 1.0)  # misses <= 95 %
        f_evict, f_expire, f_cold = f_evict / squeeze, f_expire / squeeze, f_cold / squeeze
        poisson = rng.poisson
        evictions = poisson(requests * f_evict).astype(np.float64)
        expirations = poisson(requests * f_expire).astype(np.float64)
        cold = poisson(requests * f_cold).astype(np.float64)
        hits = poisson(requests * (1 - f_evict - f_expire - f_cold)).astype(np.float64)
        fill = 0.7 + 0.3 * np.minimum(cap, 1.0)
        return {
            "cache_hits": hits,
            "cache_misses": evictions + expirations + cold,
            "cache_evictions": evictions,
            "cache_expirations": expirations,
            "cache_keys": np.round(base["keys"] * (1 + 3 * key) * rng.normal(1.0, 0.01, n)),
            "cache_size_bytes": base["capacity_bytes"] * fill * rng.normal(1.0, 0.01, n),
        }


class Synthetic:
    """Seeded cache windows (see :mod:`perfloop.models.synthetic`); counters are written as
    window means, so a window's sum is the count."""

    base = (50.0, 400.0)

    def window(self, parts: list[float], rng: random.Random) -> dict[str, float]:
        misses, c = sum(parts), SYNTHETIC_COUNT
        return {
            "cache_evictions": parts[0] / c,
            "cache_expirations": parts[1] / c,
            "cache_misses": misses / c,
            "cache_hits": misses * rng.uniform(2.5, 4.0) / c,
            "cache_keys": rng.uniform(1e4, 1e5),
            "cache_size_bytes": rng.uniform(1e8, 1e9),
        }

    def quiet(self, rng: random.Random) -> dict[str, float]:
        misses = rng.uniform(10, 50)
        return {"cache_hits": misses * rng.uniform(5, 10), "cache_misses": misses}


class Cache:
    """The cache area (see the module docstring)."""

    name = "cache"
    causes: Mapping[str, tuple[Remedy, ...]] = REMEDIES
    triggers = (
        Trigger("cache_hit_rate", "cache", ("cache_hits", "cache_misses"), _hit_rate,
                RATE_SHIFT),
    )  # fmt: skip
    cause_metrics = ("cache_evictions", "cache_expirations", "cache_keys", "cache_size_bytes")
    signals = (
        "hit_rate",
        "cache_misses",
        "cache_evictions",
        "cache_expirations",
        "cache_cold_misses",
        "cache_keys",
        "cache_size_bytes",
    )
    components: Mapping[str, str] = {
        "capacity": "cache_evictions",
        "expiry": "cache_expirations",
        "key_space": "cache_cold_misses",
    }
    profile = Profile()
    synthetic = Synthetic()

    def read(self, view: SeriesView) -> dict[str, float | None]:
        hits, misses = view.sum("cache_hits"), view.sum("cache_misses")
        evictions, expirations = view.sum("cache_evictions"), view.sum("cache_expirations")
        requests = None if hits is None or misses is None else hits + misses
        cold = None
        if misses is not None and evictions is not None and expirations is not None:
            cold = max(0.0, misses - evictions - expirations)
        return {
            "hit_rate": None if hits is None or not requests else hits / requests,
            "cache_misses": misses,
            "cache_evictions": evictions,
            "cache_expirations": expirations,
            "cache_cold_misses": cold,
            "cache_keys": view.mean("cache_keys"),
            "cache_size_bytes": view.mean("cache_size_bytes"),
        }

    def whole(self, view: SeriesView, readings: Mapping[str, float | None]) -> float | None:
        return readings["cache_misses"]


AREA: Final[Area] = Cache()
