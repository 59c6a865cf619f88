"""Producers in other languages validate against the exported JSON Schema files."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

from perfloop.schemas.messages import MESSAGE_TYPES

NOW = time.time()
SAMPLES = {
    "metric_point": {"service": "checkout", "metric": "latency_ms", "value": 12.5, "ts": NOW},
    "metric_batch": {"service": "checkout", "metric": "latency_ms", "ts": [NOW], "values": [3.0]},
    "label": {"incident_id": "i1", "service": "s", "area": "cache", "cause": "expiry", "ts": NOW},
    "action_result": {"action_id": "i1:a1", "status": "applied", "ts": NOW, "duration_ms": 3},
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("schemas")
    proc = subprocess.run(
        [sys.executable, "-m", "perfloop.cli", "schemas", "export", str(out)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert len(proc.stdout.splitlines()) == len(MESSAGE_TYPES)
    return out


def test_one_schema_per_message_type(exported: Path) -> None:
    assert sorted(p.name for p in exported.iterdir()) == sorted(
        f"{name}.schema.json" for name in MESSAGE_TYPES
    )


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_validate_against_the_exported_files(exported: Path, name: str) -> None:
    schema = json.loads((exported / f"{name}.schema.json").read_text())
    jsonschema.validate(SAMPLES[name], schema)
    MESSAGE_TYPES[name].model_validate(SAMPLES[name])  # and the models agree


def test_exported_files_reject_what_the_models_reject(exported: Path) -> None:
    schema = json.loads((exported / "metric_point.schema.json").read_text())
    bad = [
        {**SAMPLES["metric_point"], "value": "fast"},
        {**SAMPLES["metric_point"], "service": "s" * 300},
        {**SAMPLES["metric_point"], "unknown": 1},
        {k: v for k, v in SAMPLES["metric_point"].items() if k != "ts"},
    ]
    for message in bad:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(message, schema)
    label = json.loads((exported / "label.schema.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**SAMPLES["label"], "area": "disk"}, label)
