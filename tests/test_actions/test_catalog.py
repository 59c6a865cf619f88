"""The remedy catalog against the vocabulary, and parameter validation."""

from __future__ import annotations

import pytest

from perfloop.actions.catalog import DEVICES, catalog, markdown_table, remedy, validate_params
from perfloop.actions.params import ParamError, ParamSpec
from perfloop.schemas.vocabulary import area_metrics, remedy_tree

CATALOG = catalog()

#: The public vocabulary: area -> cause -> remedy names, in the flowcharts' order.
FLOWCHARTS = {
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


def test_catalog_has_the_45_remedies_of_the_flowcharts_in_order() -> None:
    assert len(CATALOG) == 45
    expected = [
        (area, cause, name)
        for area, causes in FLOWCHARTS.items()
        for cause, names in causes.items()
        for name in names
    ]
    assert [r.key for r in CATALOG] == expected
    assert remedy_tree() == FLOWCHARTS


def test_every_remedy_is_documented_and_moves_a_known_metric() -> None:
    for r in CATALOG:
        assert r.description.endswith("."), r.key
        assert r.metric in area_metrics(r.area), r.key
        assert validate_params(r.area, r.cause, r.name, {}) == r.defaults()


def test_accelerator_remedies_are_the_mps_ones() -> None:
    assert {r.name for r in CATALOG if r.accelerator} == {
        "use_mps_efficiently", "optimize_mps_usage", "optimize_mps",
    }  # fmt: skip
    assert DEVICES[0] == "mps"


def test_markdown_table_has_one_row_per_remedy() -> None:
    lines = markdown_table().splitlines()
    assert len(lines) == 2 + 45
    assert all(f"`{r.name}`" in line for r, line in zip(CATALOG, lines[2:], strict=True))


@pytest.mark.parametrize(
    ("key", "params", "expected"),
    [
        (("memory", "cache", "reduce_ttl"), {"factor": 1}, {"factor": 1.0}),
        (("memory", "cache", "reduce_ttl"), {"factor": 0.01}, {"factor": 0.01}),
        (("memory", "workers", "adjust_pool_size"), {"delta": -64},
         {"delta": -64, "min_workers": 1}),
        (("memory", "model", "reduce_precision"), {"dtype": "int8"}, {"dtype": "int8"}),
        (("latency", "network", "optimize_routes"), {"prefer_local": False},
         {"prefer_local": False, "reuse_connections": True}),
    ],
)  # fmt: skip
def test_values_inside_bounds_are_accepted(
    key: tuple[str, str, str], params: dict[str, object], expected: dict[str, object]
) -> None:
    assert validate_params(*key, params) == expected


@pytest.mark.parametrize(
    ("key", "params", "message"),
    [
        (("memory", "cache", "reduce_ttl"), {"factor": 0}, "factor: 0 is not above"),
        (("memory", "cache", "reduce_ttl"), {"factor": 1.5}, "factor: 1.5 is above"),
        (("memory", "cache", "reduce_ttl"), {"factor": float("nan")}, "not a finite"),
        (("memory", "cache", "reduce_ttl"), {"factor": True}, "factor: True is not a number"),
        (("memory", "cache", "reduce_ttl"), {"factor": "0.5"}, "not a number"),
        (("memory", "cache", "reduce_ttl"), {"ttl": 3}, "ttl: unknown parameter (=3)"),
        (("memory", "workers", "adjust_pool_size"), {"delta": 65}, "delta: 65 is above"),
        (("memory", "workers", "adjust_pool_size"), {"delta": 2.5}, "not an integer"),
        (("memory", "model", "reduce_precision"), {"dtype": "; rm -rf /"},
         "dtype: '; rm -rf /' is not one of float16, bfloat16, int8"),
        (("latency", "network", "optimize_routes"), {"prefer_local": 1}, "not a bool"),
        (("cache", "expiry", "background_refresh"), {"refresh_ahead": 1.0}, "not below"),
    ],
)  # fmt: skip
def test_values_outside_bounds_name_param_and_value(
    key: tuple[str, str, str], params: dict[str, object], message: str
) -> None:
    with pytest.raises(ParamError, match="params") as info:
        validate_params(*key, params)
    assert message in str(info.value)
    assert "/".join(key) in str(info.value)


def test_unknown_remedy_is_refused() -> None:
    with pytest.raises(ParamError, match="'drop_tables' is not in the catalog"):
        remedy("memory", "cache", "drop_tables")
    with pytest.raises(ParamError, match="not in the catalog for cache/capacity"):
        validate_params("cache", "capacity", "reduce_ttl", {})


def test_compress_data_is_two_remedies_with_their_own_defaults() -> None:
    assert remedy("memory", "cache", "compress_data").defaults()["codec"] == "zstd"
    assert remedy("cache", "capacity", "compress_data").defaults()["codec"] == "lz4"


def test_a_default_outside_its_bounds_is_a_catalog_error() -> None:
    with pytest.raises(ParamError, match="is above"):
        ParamSpec.number("factor", 2.0, low=0.0, high=1.0)
    with pytest.raises(ParamError, match="needs choices"):
        ParamSpec("codec", "enum", "zstd")
