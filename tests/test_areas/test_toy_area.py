"""A sixth area, written here through the area protocol alone: registered, it is detected,
diagnosed, acted on and verified by the same stages as the five built-in areas, and known to
the vocabulary, the messages and the catalog; unregistered, it is gone again."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

import numpy as np
import pytest
from area_windows import TARGET_RPS, Simulated

from perfloop.actions.catalog import catalog, markdown_table
from perfloop.actions.planner import Planner
from perfloop.actions.remedy import F, N, Remedy, by_cause, remedies_of
from perfloop.actions.signing import Keyring, verify
from perfloop.areas import registry
from perfloop.areas.base import Array, Levels, Trigger
from perfloop.areas.view import SeriesView
from perfloop.models.diagnoser import Diagnoser
from perfloop.schemas.config import PerfloopConfig, ThresholdRule
from perfloop.schemas.messages import ActionResult, Breach, Label
from perfloop.schemas.vocabulary import areas, non_negative_metrics
from perfloop.streams.detect import Detector
from perfloop.streams.incident import ServiceBook
from perfloop.streams.loop import Loop, LoopOutput
from perfloop.streams.verify import SAMPLE_SHIFT

_r = remedies_of("disk")
GB = 1e9


class DiskProfile:
    efficacy = {("logs", "rotate_logs"): (0.9, 0.5), ("tmp", "clean_tmp"): (0.9, 0.5)}

    def baseline(self, scale: float, jitter: Callable[[float], float]) -> dict[str, float]:
        return {"size": 100 * GB * scale, "logs": jitter(20 * GB), "tmp": jitter(15 * GB)}

    def emit(
        self, base: Mapping[str, float], load: Array, levels: Levels, rng: np.random.Generator,
        target_rps: float, rate: float,
    ) -> dict[str, Array]:  # fmt: skip
        n = load.size
        logs = base["logs"] * rng.normal(1.0, 0.01, n) + levels("logs") * 45 * GB
        tmp = base["tmp"] * rng.normal(1.0, 0.01, n) + levels("tmp") * 45 * GB
        return {
            "disk_used_ratio": (logs + tmp + 20 * GB) / base["size"],
            "disk_log_bytes": logs,
            "disk_tmp_bytes": tmp,
        }


class DiskSynthetic:
    base = (1 * GB, 5 * GB)

    def window(self, parts: list[float], rng: random.Random) -> dict[str, float]:
        return {"disk_log_bytes": parts[0], "disk_tmp_bytes": parts[1]}

    def quiet(self, rng: random.Random) -> dict[str, float]:
        return {"disk_used_ratio": rng.uniform(0.3, 0.6)}


class Disk:
    name = "disk"
    causes: Mapping[str, tuple[Remedy, ...]] = by_cause(
        _r("logs", "rotate_logs", "Rotate and drop old logs.", "disk_log_bytes", "down",
           N("keep_files", 5, low=1, high=100)),
        _r("tmp", "clean_tmp", "Delete old temporary files.", "disk_tmp_bytes", "down",
           F("min_age_h", 24.0, low=0.0, high=720.0)),
    )  # fmt: skip
    triggers = (
        Trigger(
            "disk_used_ratio.max", "disk_used", ("disk_used_ratio",),
            lambda view: view.max("disk_used_ratio"), SAMPLE_SHIFT,
            default_rule=ThresholdRule(direction="above", fire=0.9, clear=0.85),
        ),
    )  # fmt: skip
    cause_metrics = ("disk_log_bytes", "disk_tmp_bytes")
    signals = ("disk_used_ratio", *cause_metrics)
    components: Mapping[str, str] = {"logs": "disk_log_bytes", "tmp": "disk_tmp_bytes"}
    profile = DiskProfile()
    synthetic = DiskSynthetic()

    def read(self, view: SeriesView) -> dict[str, float | None]:
        return {"disk_used_ratio": view.max("disk_used_ratio")} | {
            m: view.mean(m) for m in self.cause_metrics
        }

    def whole(self, view: SeriesView, readings: Mapping[str, float | None]) -> float | None:
        return None  # the components' sum


CONFIG = PerfloopConfig.model_validate(
    {
        "detection": {"throughput_target_rps": TARGET_RPS},
        "planner": {"cooldown_s": 0},
        "verification": {"settle_windows": 1, "post_windows": 3},
    }
)
KEYS = Keyring.parse("toy-area-secret-0123456789")


def test_a_registered_area_goes_round_the_whole_loop() -> None:
    with registry.registered(Disk()):
        service = Simulated(seed=11, levels={"disk/logs": 1.0})
        detector, loop = Detector(CONFIG.detection), Loop(CONFIG, Planner(CONFIG.planner), KEYS)
        book, sent = ServiceBook("svc"), LoopOutput()
        history = service.windows(3)
        breaches = [e for w in history for e in detector.observe(w) if isinstance(e, Breach)]
        assert [(b.area, b.signal, b.threshold) for b in breaches] == [
            ("disk", "disk_used_ratio.max", 0.9)
        ]
        (breach,) = breaches
        diagnoser = Diagnoser()
        diagnosis = diagnoser.diagnose(breach, history, breach.breach_id, CONFIG.detection)
        assert diagnosis.cause == "logs" and set(diagnosis.probabilities) == {"logs", "tmp"}
        assert diagnosis.features["ctx_latency_missing"] == 0.0  # the others are its context

        for w in history:
            sent.extend(loop.on_window(book, w))
        sent.extend(loop.on_breach(book, breach))
        sent.extend(loop.on_diagnosis(book, diagnosis))
        (command,) = sent.commands
        assert (command.area, command.cause, command.remedy) == ("disk", "logs", "rotate_logs")
        assert command.params == {"keep_files": 5}
        assert verify(command, KEYS, now=command.issued_at) is None
        applied = ActionResult(action_id=command.action_id, status="applied", ts=command.issued_at)
        sent.extend(loop.on_result(book, applied))
        service.levels["disk/logs"] = 0.0  # the remedy worked
        for w in service.windows(4):
            sent.extend(loop.on_window(book, w))

        (verdict,) = sent.verifications
        assert verdict.area == "disk" and verdict.verdict == "resolved", verdict
        assert [(lb.area, lb.cause) for lb in sent.labels] == [("disk", "logs")]
        assert [t.to_state for t in sent.transitions][-1] == "resolved"
        assert diagnoser.learn_label(breach.breach_id, "disk", diagnosis.features, "logs")
        assert diagnoser.labels_seen("disk") == 1


def test_a_registered_area_is_in_the_vocabulary_until_it_is_removed() -> None:
    label = {"incident_id": "i", "service": "s", "area": "disk", "cause": "tmp", "ts": 1.8e9}
    with registry.registered(Disk()):
        assert areas()[-1] == "disk" and "disk_used_ratio" in non_negative_metrics()
        assert Label.model_validate(label).cause == "tmp"
        assert "disk" in Label.model_json_schema()["properties"]["area"]["enum"]
        assert [r.name for r in catalog() if r.area == "disk"] == ["rotate_logs", "clean_tmp"]
        assert "| disk | tmp | `clean_tmp` |" in markdown_table()
        with pytest.raises(ValueError, match="already registered"):
            registry.register(Disk())
    assert "disk" not in areas() and "disk_used_ratio" not in non_negative_metrics()
    with pytest.raises(ValueError, match="unknown area 'disk'"):
        Label.model_validate(label)


def test_a_broken_area_is_refused_with_what_is_wrong() -> None:
    class NoComponents(Disk):
        components: Mapping[str, str] = {"logs": "disk_log_bytes"}

    class TakenTrigger(Disk):
        triggers = (registry.get("memory").triggers[0],)

    class Misfiled(Disk):
        name = "disk2"

    with pytest.raises(ValueError, match=r"area 'disk': components \['logs'\] differ"):
        registry.register(NoComponents())
    with pytest.raises(ValueError, match="trigger 'memory_bytes.max' is another area's"):
        registry.register(TakenTrigger())
    with pytest.raises(ValueError, match="remedy 'rotate_logs' is disk/logs's, listed as disk2"):
        registry.register(Misfiled())
    assert "disk" not in areas() and "disk2" not in areas()
