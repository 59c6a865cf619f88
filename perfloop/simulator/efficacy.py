"""How well each remedy fixes its cause in the simulator: the efficacy table.

When a command names the remedy of the cause that is really at work, the fault goes away with
probability ``fix``; otherwise its strength is cut by ``partial`` (0 means the remedy did
nothing). The best remedy of a cause is deliberately *not* the first one of the flowchart, so
a planner that only follows the flowchart's order does worse than one that learns.

A remedy of another cause of the same area (a wrong diagnosis) does nothing, except with
probability :data:`WRONG_WORSE_P` when it makes the fault :data:`WRONG_FACTOR` times
stronger.

=============  ==========  =============================================================
area           cause       remedies, best first: fix probability / partial cut
=============  ==========  =============================================================
memory         cache       compress_data .80/.40, reduce_ttl .55/.30, increase_eviction .35/.15
memory         model       reduce_precision .85/.40, batch_optimization .60/.30,
                           use_mps_efficiently .40/.20
memory         workers     improve_cleanup .80/.40, adjust_pool_size .50/.30,
                           limit_queue_size .30/.20
latency        processing  optimize_mps_usage .75/.30, improve_caching .60/.30,
                           increase_batch_size .45/.20
latency        network     use_compression .80/.40, reduce_payload_size .50/.30,
                           optimize_routes .35/.20
latency        database    connection_pool .85/.40, query_tuning .65/.30,
                           index_optimization .50/.30
throughput     cpu         optimize_mps .75/.30, increase_workers .55/.30,
                           profile_hot_paths .15/.00
throughput     io          async_processing .80/.40, cache_results .60/.30,
                           batch_operations .45/.20
throughput     memory      optimize_allocation .80/.40, pool_resources .60/.30,
                           reduce_object_size .40/.20
cache          capacity    compress_data .80/.40, increase_memory .60/.30,
                           eviction_policy .45/.20
cache          expiry      background_refresh .85/.40, adjust_ttl .50/.30,
                           predictive_load .40/.20
cache          key_space   optimize_storage .75/.30, key_strategy .55/.30, shard_data .35/.15
attribution    entropy     feature_selection .80/.40, model_tuning .50/.30,
                           adjust_thresholds .35/.20
attribution    sparsity    threshold_tuning .80/.40, l1_regularization .55/.30,
                           feature_pruning .40/.20
attribution    accuracy    data_quality .80/.40, model_calibration .50/.30,
                           validation_set .30/.00
=============  ==========  =============================================================

>>> efficacy("memory", "cache", "compress_data")
Efficacy(fix=0.8, partial=0.4)
>>> best_remedy("memory", "cache")
'compress_data'
>>> len(EFFICACY)
45
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from perfloop.schemas.vocabulary import REMEDY_TREE

#: A wrong remedy (another cause's) makes the fault this much stronger ...
WRONG_FACTOR: Final[float] = 1.1
#: ... with this probability; otherwise it does nothing.
WRONG_WORSE_P: Final[float] = 0.3


@dataclass(frozen=True, slots=True)
class Efficacy:
    """``fix``: probability the remedy removes the fault; ``partial``: the fraction of the
    fault's strength it removes when it does not."""

    fix: float
    partial: float


def _e(fix: float, partial: float) -> Efficacy:
    return Efficacy(fix, partial)


#: (area, cause, remedy) -> its efficacy against that cause.
EFFICACY: Final[dict[tuple[str, str, str], Efficacy]] = {
    ("memory", "cache", "reduce_ttl"): _e(0.55, 0.30),
    ("memory", "cache", "increase_eviction"): _e(0.35, 0.15),
    ("memory", "cache", "compress_data"): _e(0.80, 0.40),
    ("memory", "model", "use_mps_efficiently"): _e(0.40, 0.20),
    ("memory", "model", "batch_optimization"): _e(0.60, 0.30),
    ("memory", "model", "reduce_precision"): _e(0.85, 0.40),
    ("memory", "workers", "adjust_pool_size"): _e(0.50, 0.30),
    ("memory", "workers", "limit_queue_size"): _e(0.30, 0.20),
    ("memory", "workers", "improve_cleanup"): _e(0.80, 0.40),
    ("latency", "processing", "increase_batch_size"): _e(0.45, 0.20),
    ("latency", "processing", "optimize_mps_usage"): _e(0.75, 0.30),
    ("latency", "processing", "improve_caching"): _e(0.60, 0.30),
    ("latency", "network", "reduce_payload_size"): _e(0.50, 0.30),
    ("latency", "network", "use_compression"): _e(0.80, 0.40),
    ("latency", "network", "optimize_routes"): _e(0.35, 0.20),
    ("latency", "database", "index_optimization"): _e(0.50, 0.30),
    ("latency", "database", "query_tuning"): _e(0.65, 0.30),
    ("latency", "database", "connection_pool"): _e(0.85, 0.40),
    ("throughput", "cpu", "increase_workers"): _e(0.55, 0.30),
    ("throughput", "cpu", "optimize_mps"): _e(0.75, 0.30),
    ("throughput", "cpu", "profile_hot_paths"): _e(0.15, 0.00),
    ("throughput", "io", "batch_operations"): _e(0.45, 0.20),
    ("throughput", "io", "async_processing"): _e(0.80, 0.40),
    ("throughput", "io", "cache_results"): _e(0.60, 0.30),
    ("throughput", "memory", "reduce_object_size"): _e(0.40, 0.20),
    ("throughput", "memory", "pool_resources"): _e(0.60, 0.30),
    ("throughput", "memory", "optimize_allocation"): _e(0.80, 0.40),
    ("cache", "capacity", "increase_memory"): _e(0.60, 0.30),
    ("cache", "capacity", "eviction_policy"): _e(0.45, 0.20),
    ("cache", "capacity", "compress_data"): _e(0.80, 0.40),
    ("cache", "expiry", "adjust_ttl"): _e(0.50, 0.30),
    ("cache", "expiry", "predictive_load"): _e(0.40, 0.20),
    ("cache", "expiry", "background_refresh"): _e(0.85, 0.40),
    ("cache", "key_space", "key_strategy"): _e(0.55, 0.30),
    ("cache", "key_space", "shard_data"): _e(0.35, 0.15),
    ("cache", "key_space", "optimize_storage"): _e(0.75, 0.30),
    ("attribution", "entropy", "adjust_thresholds"): _e(0.35, 0.20),
    ("attribution", "entropy", "feature_selection"): _e(0.80, 0.40),
    ("attribution", "entropy", "model_tuning"): _e(0.50, 0.30),
    ("attribution", "sparsity", "l1_regularization"): _e(0.55, 0.30),
    ("attribution", "sparsity", "threshold_tuning"): _e(0.80, 0.40),
    ("attribution", "sparsity", "feature_pruning"): _e(0.40, 0.20),
    ("attribution", "accuracy", "model_calibration"): _e(0.50, 0.30),
    ("attribution", "accuracy", "data_quality"): _e(0.80, 0.40),
    ("attribution", "accuracy", "validation_set"): _e(0.30, 0.00),
}

assert set(EFFICACY) == {
    (a, c, r) for a, causes in REMEDY_TREE.items() for c, names in causes.items() for r in names
}


def efficacy(area: str, cause: str, remedy: str) -> Efficacy:
    """The efficacy of ``remedy`` against ``cause``; ``ValueError`` if it is not its remedy."""
    try:
        return EFFICACY[(area, cause, remedy)]
    except KeyError:
        raise ValueError(f"remedy: {remedy!r} is not a remedy for {area}/{cause}") from None


def best_remedy(area: str, cause: str) -> str:
    """The remedy of ``cause`` most likely to fix it."""
    names = REMEDY_TREE[area][cause]
    return max(names, key=lambda r: EFFICACY[(area, cause, r)].fix)


def markdown_table() -> str:
    """The efficacy table, best remedy first within each cause, as Markdown."""
    lines = ["| area | cause | remedy | fix probability | partial cut |", "|---|---|---|---|---|"]
    for area, causes in REMEDY_TREE.items():
        for cause, names in causes.items():
            ranked = sorted(names, key=lambda r: -EFFICACY[(area, cause, r)].fix)
            for r in ranked:
                e = EFFICACY[(area, cause, r)]
                lines.append(f"| {area} | {cause} | `{r}` | {e.fix:.2f} | {e.partial:.2f} |")
    return "\n".join(lines) + "\n"
