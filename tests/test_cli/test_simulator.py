"""The simulator's metrics: every metric of the vocabulary, a healthy baseline inside the
thresholds, faults that cross them with an identifiable cause, and reproducibility."""

from __future__ import annotations

from pathlib import Path

import pytest
from simulator_support import (
    T0,
    breached,
    direct_windows,
    prior_cause,
    run_for,
    scenario,
    signals,
    windows_of,
)

from perfloop.schemas.messages import MetricBatch
from perfloop.schemas.vocabulary import non_negative_metrics, remedy_tree
from perfloop.simulator import Scenario, Simulation, load_scenario, metrics
from perfloop.simulator.scenario import BUNDLED

SCENARIOS = BUNDLED
CAUSES = [(area, cause) for area, causes in remedy_tree().items() for cause in causes]
#: the attribution signal each attribution cause breaches
ATTRIBUTION_SIGNAL = {
    "entropy": "attribution_entropy.mean",
    "sparsity": "attribution_sparsity.mean",
    "accuracy": "attribution_accuracy.mean",
}


def test_every_metric_of_the_vocabulary_is_emitted_as_valid_batches() -> None:
    sim = Simulation(scenario(), seed=3, rate=4.0, start_ts=T0)
    batches = run_for(sim, 5.0)
    assert {b["metric"] for b in batches} == set(metrics()) == non_negative_metrics()
    for b in batches:
        batch = MetricBatch.model_validate(b)
        assert batch.service == "api" and len(batch.ts) == len(batch.values) >= 1
    # 4 points per second per metric: 0.0, 0.25, ... 5.0
    assert sum(len(b["ts"]) for b in batches if b["metric"] == "latency_ms") == 21


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_healthy_services_stay_clearly_inside_every_threshold(seed: int) -> None:
    sim = Simulation(scenario(period_s=120.0, amplitude=0.2), seed=seed, start_ts=T0)
    batches = run_for(sim, 250.0)
    # the worker's own decoder and windows once, exact statistics for the other seeds
    windows = (windows_of if seed == 0 else direct_windows)(batches)["api"]
    assert len(windows) >= 24
    for w in windows:
        s = signals(w, target=200.0)
        assert not any(breached(x) for x in s.values()), w.window_id
        assert s["memory_bytes.max"].value < 0.8 * 33.6e9
        assert s["latency_ms.p95"].value < 400
        assert s["throughput_rps.mean_ratio"].value > 1.05
        assert s["cache_hit_rate"].value > 0.85
        assert s["attribution_entropy.mean"].value < 0.8
        assert s["attribution_sparsity.mean"].value > 0.25
        assert s["attribution_accuracy.mean"].value > 0.83


@pytest.mark.parametrize(("area", "cause"), CAUSES)
def test_each_fault_crosses_its_threshold_and_the_prior_names_its_cause(
    area: str, cause: str
) -> None:
    for seed in (0, 1, 2):
        fault = {"service": "svc", "area": area, "cause": cause, "at": 30.0, "strength": 1.0}
        sim = Simulation(scenario(fault, period_s=300.0), seed=seed, start_ts=T0)
        batches = run_for(sim, 100.0)
        # the worker's own decoder and windows once, exact statistics for the other seeds
        windows = (windows_of if seed == 0 else direct_windows)(batches)["svc"]
        before, after = signals(windows[1]), signals(windows[-1])
        assert not any(breached(x) for x in before.values())
        crossed = {name for name, x in after.items() if breached(x)}
        want = ATTRIBUTION_SIGNAL[cause] if area == "attribution" else after_signal(area)
        assert crossed == {want}, (seed, crossed)
        assert prior_cause(area, windows[-6:]) == cause, seed


def after_signal(area: str) -> str:
    return {
        "memory": "memory_bytes.max",
        "latency": "latency_ms.p95",
        "throughput": "throughput_rps.mean_ratio",
        "cache": "cache_hit_rate",
    }[area]


def test_the_same_seed_gives_the_same_output_and_another_seed_does_not() -> None:
    fault = {"service": "api", "area": "latency", "cause": "network", "at": 2.0}

    def output(seed: int) -> list[dict[str, object]]:
        return run_for(Simulation(scenario(fault), seed=seed, start_ts=T0), 10.0)

    assert output(5) == output(5)
    assert output(5) != output(6)


def test_speed_runs_simulated_time_faster_than_the_wall_clock() -> None:
    sim = Simulation(scenario(), seed=0, rate=2.0, speed=10.0, start_ts=T0)
    sim.tick(T0)
    batches = sim.tick(T0 + 1.0)  # one wall second = ten simulated seconds
    assert batches[0]["ts"][0] == T0 + 0.5 and batches[0]["ts"][-1] == T0 + 10.0
    assert sim.clock == 10.0


def test_simulated_time_never_runs_more_than_max_lead_s_ahead_of_the_wall_clock() -> None:
    sim = Simulation(scenario(), seed=0, rate=1.0, speed=100.0, max_lead_s=50.0)
    sim.tick(T0)
    last = sim.tick(T0 + 10.0)[0]["ts"][-1]  # 1000 s fast, but capped at 50 s ahead
    assert last == T0 + 60.0


@pytest.mark.parametrize("name", ["all-areas.toml", "fifteen-causes.toml"])
def test_the_scenario_files_load(name: str) -> None:
    loaded = load_scenario(SCENARIOS / name)
    assert len(loaded.services) == 5 and loaded.simulation.speed > 1
    areas = {(f.area, f.cause) for f in loaded.faults}
    if name == "all-areas.toml":
        assert {a for a, _ in areas} == set(remedy_tree()) and len(loaded.faults) == 5
    else:
        assert areas == set(CAUSES)
    starts = sorted(f.at for f in loaded.faults)
    assert len(set(starts)) == len(starts)  # staggered
    pairs = [(f.service, f.area) for f in loaded.faults]
    assert len(set(pairs)) == len(pairs)  # one fault per service and area


@pytest.mark.parametrize("name", ["all-areas.toml", "fifteen-causes.toml"])
def test_every_fault_of_the_scenario_files_breaches_with_its_cause_named(name: str) -> None:
    loaded = load_scenario(SCENARIOS / name)
    sim = Simulation(loaded, rate=2.0, speed=1.0, start_ts=T0)
    end = max(f.at for f in loaded.faults) + 60.0
    windows = direct_windows(run_for(sim, end, step=10.0))
    targets = {s.name: s.throughput_target_rps for s in loaded.services}
    for fault in loaded.faults:
        history = [w for w in windows[fault.service] if w.end <= T0 + fault.at + 60.0]
        crossed = {k for k, x in signals(history[-1], targets[fault.service]).items()
                   if breached(x) and x.area == fault.area}  # fmt: skip
        assert crossed, fault
        assert prior_cause(fault.area, history[-6:]) == fault.cause, fault
    first = min(f.at for f in loaded.faults)
    for service, ws in windows.items():
        for w in ws:
            if w.end <= T0 + first:
                assert not any(breached(x) for x in signals(w, targets[service]).values())


def test_a_bad_scenario_is_an_error_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[service]]\nname = "a"\n[[fault]]\nservice = "b"\narea = "memory"\n'
                   'cause = "cache"\n')  # fmt: skip
    with pytest.raises(ValueError, match=r"fault\[0\].service: 'b' is not a declared service"):
        load_scenario(bad)
    with pytest.raises(ValueError, match="simulation.sped"):
        Scenario.model_validate({"simulation": {"sped": 2}})
