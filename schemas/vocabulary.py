"""The fixed vocabulary of perfloop: areas, causes, remedy names and metric names.

These names are part of the public contract (see the README); every other module takes
them from here.

>>> causes_of("memory")
('cache', 'model', 'workers')
>>> remedies_of("memory", "cache")
('reduce_ttl', 'increase_eviction', 'compress_data')
>>> is_known_remedy("cache", "capacity", "compress_data")
True
"""

from __future__ import annotations

from typing import Final, Literal

Area = Literal["memory", "latency", "throughput", "cache", "attribution"]

AREAS: Final[tuple[str, ...]] = ("memory", "latency", "throughput", "cache", "attribution")

#: area -> cause -> remedy names, in the flowcharts' order.
REMEDY_TREE: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "memory": {
        "cache": ("reduce_ttl", "increase_eviction", "compress_data"),
        "model": ("use_mps_efficiently", "batch_optimization", "reduce_precision"),
        "workers": ("adjust_pool_size", "limit_queue_size", "improve_cleanup"),
    },
    "latency": {
        "processing": ("increase_batch_size", "optimize_mps_usage", "improve_caching"),
        "network": ("reduce_payload_size", "use_compression", "optimize_routes"),
        "database": ("index_optimization", "query_tuning", "connection_pool"),
    },
    "throughput": {
        "cpu": ("increase_workers", "optimize_mps", "profile_hot_paths"),
        "io": ("batch_operations", "async_processing", "cache_results"),
        "memory": ("reduce_object_size", "pool_resources", "optimize_allocation"),
    },
    "cache": {
        "capacity": ("increase_memory", "eviction_policy", "compress_data"),
        "expiry": ("adjust_ttl", "predictive_load", "background_refresh"),
        "key_space": ("key_strategy", "shard_data", "optimize_storage"),
    },
    "attribution": {
        "entropy": ("adjust_thresholds", "feature_selection", "model_tuning"),
        "sparsity": ("l1_regularization", "threshold_tuning", "feature_pruning"),
        "accuracy": ("model_calibration", "data_quality", "validation_set"),
    },
}

#: area -> the metric(s) whose window aggregate triggers a breach.
TRIGGER_METRICS: Final[dict[str, tuple[str, ...]]] = {
    "memory": ("memory_bytes",),
    "latency": ("latency_ms",),
    "throughput": ("throughput_rps",),
    "cache": ("cache_hits", "cache_misses"),
    "attribution": ("attribution_entropy", "attribution_sparsity", "attribution_accuracy"),
}

#: area -> the metrics that tell that area's causes apart.
CAUSE_METRICS: Final[dict[str, tuple[str, ...]]] = {
    "memory": (
        "memory_cache_bytes",
        "memory_model_bytes",
        "memory_workers_bytes",
        "queue_depth",
        "worker_count",
    ),
    "latency": (
        "latency_processing_ms",
        "latency_network_ms",
        "latency_db_ms",
        "payload_bytes",
        "db_connections_in_use",
    ),
    "throughput": ("cpu_util", "io_wait", "memory_pressure", "gc_pause_ms"),
    "cache": ("cache_evictions", "cache_expirations", "cache_keys", "cache_size_bytes"),
    "attribution": (
        "attribution_entropy",
        "attribution_sparsity",
        "attribution_accuracy",
        "feature_count",
        "calibration_error",
    ),
}

#: Every metric of the vocabulary is a size, a duration, a count, a rate or a ratio:
#: none of them can be negative.
NON_NEGATIVE_METRICS: Final[frozenset[str]] = frozenset(
    name for names in (*TRIGGER_METRICS.values(), *CAUSE_METRICS.values()) for name in names
)

ALL_CAUSES: Final[frozenset[str]] = frozenset(
    cause for causes in REMEDY_TREE.values() for cause in causes
)
ALL_REMEDIES: Final[frozenset[str]] = frozenset(
    name for causes in REMEDY_TREE.values() for names in causes.values() for name in names
)


def causes_of(area: str) -> tuple[str, ...]:
    """The causes the model tells apart for ``area``, in flowchart order."""
    try:
        return tuple(REMEDY_TREE[area])
    except KeyError:
        raise ValueError(f"area: unknown area {area!r}; known: {', '.join(AREAS)}") from None


def remedies_of(area: str, cause: str) -> tuple[str, ...]:
    """The remedies for ``cause`` in ``area``, in flowchart order."""
    causes = REMEDY_TREE.get(area)
    if causes is None:
        raise ValueError(f"area: unknown area {area!r}; known: {', '.join(AREAS)}")
    if cause not in causes:
        raise ValueError(
            f"cause: unknown cause {cause!r} for area {area!r}; known: {', '.join(causes)}"
        )
    return causes[cause]


def is_known_remedy(area: str, cause: str, remedy: str) -> bool:
    """Whether (area, cause, remedy) names a remedy of the catalog."""
    return remedy in REMEDY_TREE.get(area, {}).get(cause, ())
