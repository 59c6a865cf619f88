from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from perfloop.schemas.config import PerfloopConfig, load_config


def test_defaults_are_the_flowcharts() -> None:
    cfg = PerfloopConfig()
    assert cfg.detection.memory.fire == 33.6e9
    assert cfg.detection.latency.fire == 500.0
    assert cfg.detection.cache.fire == 0.80
    assert cfg.windows.length_s == 10.0 and cfg.windows.lateness_s == 2.0


def test_toml_file_and_environment_overrides(tmp_path: Path) -> None:
    path = tmp_path / "perfloop.toml"
    path.write_text(
        "[windows]\nlength_s = 5\n\n"
        "[detection.services.checkout.latency]\nfire = 250\nclear = 200\n"
    )
    env = {
        "PERFLOOP_CONFIG": str(path),
        "PERFLOOP_BROKER": "kafka-1:9092",
        "PERFLOOP_PLANNER__DRY_RUN": "true",
        "PERFLOOP_WINDOWS__LATENESS_S": "0.5",
    }
    cfg = load_config(environ=env)
    assert cfg.windows.length_s == 5
    assert cfg.windows.lateness_s == 0.5
    assert cfg.broker.bootstrap == "kafka-1:9092"
    assert cfg.planner.dry_run is True
    assert cfg.detection.for_service("checkout").latency.fire == 250
    assert cfg.detection.for_service("search").latency.fire == 500


def test_bad_values_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"windows\.length_s[\s\S]*input_value=-3"):
        load_config(environ={"PERFLOOP_WINDOWS__LENGTH_S": "-3"})
    with pytest.raises(ValidationError, match="latency"):
        PerfloopConfig.model_validate(
            {"detection": {"latency": {"direction": "above", "fire": 500, "clear": 600}}}
        )
    with pytest.raises(ValueError, match="no such file"):
        load_config(environ={"PERFLOOP_CONFIG": str(tmp_path / "missing.toml")})
    with pytest.raises(ValidationError, match="colour"):
        PerfloopConfig.model_validate({"windows": {"colour": "red"}})
