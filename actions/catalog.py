"""The catalog of remedies: the single source of truth for what an executor may be asked to do.

Each of the 45 remedies of the five flowcharts (:data:`perfloop.schemas.vocabulary.REMEDY_TREE`) is
a :class:`Remedy` with its description, declared parameters and the metric it is expected to
move. The documentation table is generated from here (:func:`markdown_table`).

>>> len(CATALOG)
45
>>> remedy("memory", "cache", "reduce_ttl").params[0].describe()
'float in (0.0, 1.0], default 0.5'
>>> validate_params("memory", "model", "reduce_precision", {"dtype": "bfloat16"})
{'dtype': 'bfloat16'}
>>> validate_params("memory", "cache", "reduce_ttl", {"factor": 2})
Traceback (most recent call last):
...
perfloop.actions.params.ParamError: memory/cache/reduce_ttl params.factor: 2 is above the upper ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from perfloop.actions.params import ParamError, ParamSpec, Value, check_params
from perfloop.schemas.vocabulary import REMEDY_TREE

#: The devices an accelerator remedy may name ("MPS" in the flowcharts).
DEVICES: Final[tuple[str, ...]] = ("mps", "cuda", "xpu", "cpu")

B, N, F, E = ParamSpec.boolean, ParamSpec.integer, ParamSpec.number, ParamSpec.enum


@dataclass(frozen=True)
class Remedy:
    """One remedy of the catalog, identified by (area, cause, name)."""

    area: str
    cause: str
    name: str
    description: str
    params: tuple[ParamSpec, ...]
    metric: str
    direction: Literal["down", "up"]
    accelerator: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.area, self.cause, self.name)

    def defaults(self) -> dict[str, Value]:
        return {spec.name: spec.default for spec in self.params}


def _r(
    area: str,
    cause: str,
    name: str,
    description: str,
    metric: str,
    direction: Literal["down", "up"],
    *params: ParamSpec,
    accelerator: bool = False,
) -> Remedy:
    return Remedy(area, cause, name, description, params, metric, direction, accelerator)


_CODECS = ("zstd", "lz4", "gzip")
_M, _L, _T, _C, _A = "memory", "latency", "throughput", "cache", "attribution"

#: Every remedy, in flowchart order (area, cause, position).
CATALOG: Final[tuple[Remedy, ...]] = (
    _r(_M, "cache", "reduce_ttl", "Shorten cache entry lifetimes by a factor.",
       "memory_cache_bytes", "down",
       F("factor", 0.5, low=0.0, high=1.0, low_inclusive=False)),
    _r(_M, "cache", "increase_eviction", "Evict a fraction of entries and evict more eagerly.",
       "memory_cache_bytes", "down",
       F("evict_fraction", 0.2, low=0.0, high=0.9, low_inclusive=False),
       E("policy", "lru", ("lru", "lfu", "ttl"))),
    _r(_M, "cache", "compress_data", "Store cached values compressed.",
       "memory_cache_bytes", "down",
       E("codec", "zstd", _CODECS), N("level", 3, low=1, high=19)),
    _r(_M, "model", "use_mps_efficiently", "Cap accelerator memory and release cached blocks.",
       "memory_model_bytes", "down",
       F("memory_fraction", 0.8, low=0.0, high=1.0, low_inclusive=False),
       B("empty_cache", True), accelerator=True),
    _r(_M, "model", "batch_optimization", "Cap inference batches to bound peak model memory.",
       "memory_model_bytes", "down", N("max_batch_size", 32, low=1, high=4096)),
    _r(_M, "model", "reduce_precision", "Run the model in a narrower number type.",
       "memory_model_bytes", "down", E("dtype", "float16", ("float16", "bfloat16", "int8"))),
    _r(_M, "workers", "adjust_pool_size", "Change the worker pool by a number of workers.",
       "memory_workers_bytes", "down",
       N("delta", -2, low=-64, high=64), N("min_workers", 1, low=1, high=1024)),
    _r(_M, "workers", "limit_queue_size", "Bound the work queue; excess work is refused.",
       "queue_depth", "down", N("max_queue", 1000, low=1, high=1_000_000)),
    _r(_M, "workers", "improve_cleanup", "Release worker memory more often.",
       "memory_workers_bytes", "down",
       F("gc_interval_s", 60.0, low=0.0, high=3600.0, low_inclusive=False),
       B("force_gc", True)),
    _r(_L, "processing", "increase_batch_size", "Process more items per batch.",
       "latency_processing_ms", "down",
       F("factor", 2.0, low=1.0, high=16.0, low_inclusive=False),
       N("max_batch_size", 1024, low=1, high=65536)),
    _r(_L, "processing", "optimize_mps_usage", "Keep the hot path on the accelerator.",
       "latency_processing_ms", "down",
       B("pin_memory", True), B("async_transfer", True), accelerator=True),
    _r(_L, "processing", "improve_caching", "Cache intermediate results of processing.",
       "latency_processing_ms", "down",
       F("ttl_s", 300.0, low=0.0, high=86400.0, low_inclusive=False),
       N("max_entries", 100_000, low=1, high=100_000_000)),
    _r(_L, "network", "reduce_payload_size", "Send smaller responses; drop optional fields.",
       "payload_bytes", "down",
       N("max_payload_bytes", 1_000_000, low=1024, high=100_000_000),
       B("drop_optional_fields", True)),
    _r(_L, "network", "use_compression", "Compress payloads on the wire.",
       "latency_network_ms", "down",
       E("codec", "gzip", ("gzip", "br", "zstd")), N("min_size_bytes", 1024, low=0, high=10**7)),
    _r(_L, "network", "optimize_routes", "Prefer local endpoints and reuse connections.",
       "latency_network_ms", "down", B("prefer_local", True), B("reuse_connections", True)),
    _r(_L, "database", "index_optimization", "Analyse, rebuild or propose indexes.",
       "latency_db_ms", "down", E("mode", "analyze", ("analyze", "reindex", "suggest"))),
    _r(_L, "database", "query_tuning", "Bound statement time and cache query plans.",
       "latency_db_ms", "down",
       N("statement_timeout_ms", 5000, low=100, high=600_000), B("plan_cache", True)),
    _r(_L, "database", "connection_pool", "Change the database connection pool size.",
       "db_connections_in_use", "down",
       N("delta", 5, low=-100, high=100), N("max_size", 50, low=1, high=1000)),
    _r(_T, "cpu", "increase_workers", "Add workers to the pool.",
       "throughput_rps", "up", N("delta", 2, low=1, high=64)),
    _r(_T, "cpu", "optimize_mps", "Offload CPU-bound work to the accelerator.",
       "cpu_util", "down",
       F("offload_fraction", 0.5, low=0.0, high=1.0, low_inclusive=False), accelerator=True),
    _r(_T, "cpu", "profile_hot_paths", "Sample a CPU profile to find hot paths.",
       "cpu_util", "down",
       F("duration_s", 30.0, low=0.0, high=600.0, low_inclusive=False),
       N("sample_hz", 100, low=1, high=1000)),
    _r(_T, "io", "batch_operations", "Group I/O operations into batches.",
       "io_wait", "down",
       N("batch_size", 100, low=1, high=100_000), N("flush_interval_ms", 50, low=1, high=60_000)),
    _r(_T, "io", "async_processing", "Overlap I/O with asynchronous processing.",
       "io_wait", "down", N("concurrency", 16, low=1, high=1024)),
    _r(_T, "io", "cache_results", "Cache the results of repeated I/O.",
       "io_wait", "down", F("ttl_s", 60.0, low=0.0, high=86400.0, low_inclusive=False)),
    _r(_T, "memory", "reduce_object_size", "Use compact object layouts.",
       "memory_pressure", "down", B("compact", True)),
    _r(_T, "memory", "pool_resources", "Reuse objects and buffers from a pool.",
       "gc_pause_ms", "down", N("pool_size", 64, low=1, high=10_000)),
    _r(_T, "memory", "optimize_allocation", "Collect garbage less often, in larger steps.",
       "gc_pause_ms", "down", F("gc_threshold_factor", 2.0, low=1.0, high=100.0)),
    _r(_C, "capacity", "increase_memory", "Grow the cache's memory by a factor.",
       "cache_evictions", "down",
       F("factor", 1.5, low=1.0, high=8.0, low_inclusive=False)),
    _r(_C, "capacity", "eviction_policy", "Switch the eviction policy.",
       "cache_evictions", "down", E("policy", "lfu", ("lru", "lfu", "arc", "tinylfu"))),
    _r(_C, "capacity", "compress_data", "Store cache values compressed to fit more.",
       "cache_size_bytes", "down", E("codec", "lz4", _CODECS), N("level", 1, low=1, high=19)),
    _r(_C, "expiry", "adjust_ttl", "Scale entry lifetimes (above 1 lengthens them).",
       "cache_expirations", "down",
       F("factor", 2.0, low=0.0, high=10.0, low_inclusive=False)),
    _r(_C, "expiry", "predictive_load", "Preload keys predicted to be requested soon.",
       "cache_misses", "down",
       F("horizon_s", 300.0, low=0.0, high=3600.0, low_inclusive=False),
       N("top_keys", 1000, low=1, high=1_000_000)),
    _r(_C, "expiry", "background_refresh", "Refresh entries before they expire.",
       "cache_expirations", "down",
       F("refresh_ahead", 0.2, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)),
    _r(_C, "key_space", "key_strategy", "Change how cache keys are built.",
       "cache_misses", "down", E("strategy", "normalize", ("normalize", "hash", "prefix"))),
    _r(_C, "key_space", "shard_data", "Split the key space into shards.",
       "cache_misses", "down", N("shards", 4, low=2, high=1024)),
    _r(_C, "key_space", "optimize_storage", "Compact stored keys and values.",
       "cache_size_bytes", "down", B("compact", True)),
    _r(_A, "entropy", "adjust_thresholds", "Set the attribution cut-off threshold.",
       "attribution_entropy", "down",
       F("threshold", 0.1, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)),
    _r(_A, "entropy", "feature_selection", "Keep only the most informative features.",
       "attribution_entropy", "down",
       N("max_features", 20, low=1, high=10_000),
       E("method", "mutual_info", ("mutual_info", "variance", "l1"))),
    _r(_A, "entropy", "model_tuning", "Retune the model's learning rate.",
       "attribution_entropy", "down",
       F("learning_rate_factor", 0.5, low=0.0, high=10.0, low_inclusive=False)),
    _r(_A, "sparsity", "l1_regularization", "Add L1 regularization to sparsify the model.",
       "attribution_sparsity", "up",
       F("alpha", 0.01, low=0.0, high=10.0, low_inclusive=False)),
    _r(_A, "sparsity", "threshold_tuning", "Zero attributions below a threshold.",
       "attribution_sparsity", "up",
       F("threshold", 0.05, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)),
    _r(_A, "sparsity", "feature_pruning", "Prune the least important features.",
       "attribution_sparsity", "up",
       F("keep_fraction", 0.5, low=0.0, high=1.0, low_inclusive=False)),
    _r(_A, "accuracy", "model_calibration", "Recalibrate the model's probabilities.",
       "attribution_accuracy", "up",
       E("method", "isotonic", ("isotonic", "sigmoid", "temperature"))),
    _r(_A, "accuracy", "data_quality", "Drop invalid and incomplete training rows.",
       "attribution_accuracy", "up",
       B("drop_invalid", True), F("max_missing_fraction", 0.1, low=0.0, high=1.0)),
    _r(_A, "accuracy", "validation_set", "Refresh the held-out validation set.",
       "attribution_accuracy", "up",
       F("holdout_fraction", 0.2, low=0.0, high=0.5, low_inclusive=False),
       B("refresh", True)),
)  # fmt: skip

_BY_KEY: Final[dict[tuple[str, str, str], Remedy]] = {r.key: r for r in CATALOG}


def remedy(area: str, cause: str, name: str) -> Remedy:
    """The catalog entry for (area, cause, name); ``ValueError`` naming it if unknown."""
    found = _BY_KEY.get((area, cause, name))
    if found is None:
        known = ", ".join(REMEDY_TREE.get(area, {}).get(cause, ())) or "none"
        raise ParamError(
            f"remedy: {name!r} is not in the catalog for {area}/{cause}; known: {known}"
        )
    return found


def remedies_for(area: str, cause: str) -> tuple[Remedy, ...]:
    """The catalog entries of one cause, in flowchart order."""
    return tuple(r for r in CATALOG if r.area == area and r.cause == cause)


def validate_params(
    area: str, cause: str, name: str, params: dict[str, object]
) -> dict[str, Value]:
    """The remedy's defaults overridden by ``params``; ``ParamError`` naming param and value."""
    entry = remedy(area, cause, name)
    return check_params(entry.params, params, where=f"{area}/{cause}/{name} params")


def markdown_table() -> str:
    """The documentation table of every remedy, generated from :data:`CATALOG`.

    >>> row = markdown_table().splitlines()[2]
    >>> row.split(" | ")[2], row.split(" | ")[4]
    ('`reduce_ttl`', '`factor`: float in (0.0, 1.0], default 0.5')
    """
    lines = [
        "| area | cause | remedy | what it does | parameters | expected to move |",
        "|---|---|---|---|---|---|",
    ]
    for r in CATALOG:
        params = "; ".join(f"`{p.name}`: {p.describe()}" for p in r.params) or "none"
        if r.accelerator:
            params += "; carries the device"
        arrow = "↓" if r.direction == "down" else "↑"
        lines.append(
            f"| {r.area} | {r.cause} | `{r.name}` | {r.description} | {params} "
            f"| `{r.metric}` {arrow} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
