"""Remedies acting on simulated faults: the right one fixes with its efficacy, a wrong one
does not, a dry run changes nothing, and the draws are reproducible."""

from __future__ import annotations

from typing import Any

import pytest
from simulator_support import T0, breached, direct_windows, run_for, scenario, signals

from perfloop.actions.handlers import Handler
from perfloop.actions.signing import Keyring, build_command
from perfloop.schemas.messages import ActionCommand
from perfloop.schemas.vocabulary import remedy_tree
from perfloop.simulator import Simulation, SimulatorHandler, best_remedy, efficacy, efficacy_table
from perfloop.simulator.efficacy import WRONG_FACTOR, WRONG_WORSE_P

KEYS = Keyring.parse("simulator-test-secret-0123456789")


def command(
    remedy: str, area: str = "memory", cause: str = "cache", incident: str = "inc-1",
    service: str = "svc", **extra: Any,
) -> ActionCommand:  # fmt: skip
    built = build_command(
        incident_id=incident, service=service, area=area, cause=cause, remedy=remedy,
        params={}, attempt=1, issued_at=T0, ttl_s=60.0, keys=KEYS, **extra,
    )  # fmt: skip
    return built


def faulty(area: str = "memory", cause: str = "cache", seed: int = 0) -> Simulation:
    """A simulation whose one fault is active from the first tick."""
    fault = {"service": "svc", "area": area, "cause": cause, "at": 0.0, "strength": 1.5}
    sim = Simulation(scenario(fault), seed=seed, rate=1.0, start_ts=T0)
    sim.tick(T0)
    return sim


def test_the_table_covers_every_remedy_and_the_best_is_never_the_flowcharts_first() -> None:
    assert len(efficacy_table()) == 45
    for area, causes in remedy_tree().items():
        for cause, names in causes.items():
            assert best_remedy(area, cause) != names[0]
            fixes = sorted(efficacy(area, cause, r).fix for r in names)
            assert fixes[0] < fixes[-1]
    assert best_remedy("memory", "cache") == "compress_data"
    names = remedy_tree()["memory"]["cache"]
    ranked = sorted(names, key=lambda r: -efficacy("memory", "cache", r).fix)
    assert ranked[:2] == ["compress_data", "reduce_ttl"]


@pytest.mark.parametrize(
    ("area", "cause", "remedy"),
    [("memory", "cache", "compress_data"), ("latency", "database", "index_optimization"),
     ("cache", "key_space", "shard_data")],
)  # fmt: skip
def test_the_right_remedy_fixes_with_its_efficacy_or_weakens_the_fault(
    area: str, cause: str, remedy: str
) -> None:
    power = efficacy(area, cause, remedy)
    fixed = 0
    trials = 400
    for i in range(trials):
        sim = faulty(area, cause)
        detail = sim.apply(command(remedy, area, cause, incident=f"inc-{i}"))
        fault = sim.faults[0]
        if fault.resolved_at is not None:
            fixed += 1
            assert detail.endswith("fault fixed") and fault.resolved_by == remedy
            assert not fault.active
        else:
            assert fault.active
            assert fault.strength == pytest.approx(1.5 * (1 - power.partial))
    assert fixed / trials == pytest.approx(power.fix, abs=0.07)


def test_a_fixed_fault_leaves_the_metrics_after_a_short_recovery() -> None:
    sim = Simulation(
        scenario({"service": "svc", "area": "latency", "cause": "network", "at": 0.0}),
        seed=0, start_ts=T0,
    )  # fmt: skip
    before = run_for(sim, 30.0)
    for i in range(50):  # some draw fixes it (use_compression fixes with p = 0.8)
        if sim.apply(command("use_compression", "latency", "network", incident=f"i{i}")).endswith(
            "fixed"
        ):
            break
    resolved_at = sim.faults[0].resolved_at
    assert resolved_at is not None
    windows = direct_windows(before + run_for(sim, 70.0))["svc"]
    p95 = {w.start - T0: signals(w)["latency_ms.p95"] for w in windows}
    assert breached(p95[20.0])
    assert not any(breached(s) for start, s in p95.items() if start >= 40.0)


@pytest.mark.parametrize("remedy", ["adjust_pool_size", "reduce_precision"])
def test_a_wrong_remedy_never_fixes_and_sometimes_makes_it_slightly_worse(remedy: str) -> None:
    cause = "workers" if remedy == "adjust_pool_size" else "model"
    worse = 0
    trials = 400
    for i in range(trials):
        sim = faulty("memory", "cache")
        outcome = sim.apply_outcome(command(remedy, "memory", cause, incident=f"inc-{i}"))
        fault = sim.faults[0]
        assert fault.active and outcome.effect in ("unchanged", "worse")
        if outcome.effect == "worse":
            worse += 1
            assert fault.strength == pytest.approx(1.5 * WRONG_FACTOR)
        else:
            assert fault.strength == 1.5
    assert worse / trials == pytest.approx(WRONG_WORSE_P, abs=0.07)


def test_dry_runs_other_services_and_areas_change_nothing() -> None:
    sim = faulty("memory", "cache")
    dry = sim.apply_outcome(command("compress_data", dry_run=True))
    other_service = sim.apply_outcome(command("compress_data", service="other"))
    other_area = sim.apply_outcome(command("adjust_ttl", "cache", "expiry"))
    assert [dry.effect, other_service.effect, other_area.effect] == [
        "dry_run", "no_fault", "no_fault",
    ]  # fmt: skip
    assert sim.faults[0].strength == 1.5 and sim.faults[0].active


def test_a_fault_not_started_yet_cannot_be_fixed() -> None:
    sim = Simulation(
        scenario({"service": "svc", "area": "memory", "cause": "cache", "at": 100.0}),
        seed=0, start_ts=T0,
    )  # fmt: skip
    run_for(sim, 10.0)
    assert sim.apply_outcome(command("compress_data")).effect == "no_fault"
    assert not sim.faults[0].active and sim.faults[0].resolved_at is None


def test_outcomes_are_reproducible_from_the_seed_and_the_action_id() -> None:
    def effects(seed: int) -> list[str]:
        sim = faulty(seed=seed)
        out = []
        for i in range(12):
            out.append(sim.apply_outcome(command("increase_eviction", incident=f"x{i}")).effect)
            if out[-1] == "fixed":
                sim = faulty(seed=seed)
        return out

    assert effects(3) == effects(3)
    assert effects(3) != effects(4)


def test_a_fault_with_a_duration_expires_by_itself() -> None:
    fault = {"service": "svc", "area": "cache", "cause": "expiry", "at": 5.0, "duration_s": 10.0}
    sim = Simulation(scenario(fault), seed=0, start_ts=T0)
    run_for(sim, 20.0)
    view = sim.faults[0]
    assert view.resolved_by == "expired" and view.resolved_at == 15.0


def test_the_handler_speaks_the_executor_protocol_and_reports_outcomes() -> None:
    sim = faulty()
    seen = []
    handler = SimulatorHandler(sim, on_apply=seen.append)
    assert isinstance(handler, Handler) and handler.name == "simulator"
    detail = handler.apply(command("increase_workers", "throughput", "cpu"))
    assert detail.endswith("increase_workers: no active throughput fault, nothing changed")
    assert [o.effect for o in seen] == ["no_fault"] and sim.outcomes == seen
