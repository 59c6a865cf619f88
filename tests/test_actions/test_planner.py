"""The planner: flowchart order, cause fallback, limits, guardrails and learning."""

from __future__ import annotations

import pytest

from perfloop.actions.bandit import RemedyBandit, verdict_reward
from perfloop.actions.planner import Act, Attempt, Escalate, Planner, Wait
from perfloop.schemas.config import PlannerConfig
from perfloop.schemas.messages import Diagnosis

T0 = 1_700_000_000.0
MEMORY = {"cache": 0.6, "model": 0.3, "workers": 0.1}


def planner(**limits: object) -> Planner:
    settings: dict[str, object] = {"cooldown_s": 0, **limits}
    return Planner(PlannerConfig.model_validate(settings))


def decide(
    p: Planner,
    history: list[Attempt],
    now: float = T0,
    service: str = "api",
    probabilities: dict[str, float] = MEMORY,
    incident: str = "inc-1",
) -> object:
    return p.decide(incident_id=incident, service=service, area="memory",
                    probabilities=probabilities, history=history, now=now)  # fmt: skip


def test_empty_history_follows_the_flowchart_order_for_every_seed() -> None:
    for seed in range(25):
        p = Planner(PlannerConfig(seed=seed))
        history: list[Attempt] = []
        chosen = []
        for _ in range(3):
            act = p.next_remedy("latency", {"database": 0.9}, history, key=f"inc-{seed}")
            assert isinstance(act, Act)
            chosen.append(act.remedy)
            history.append(Attempt(act.cause, act.remedy, "unchanged"))
        assert chosen == ["index_optimization", "query_tuning", "connection_pool"]


def test_the_most_probable_cause_comes_first_then_the_next() -> None:
    p = planner(max_attempts=10)
    history: list[Attempt] = []
    order = []
    for i in range(9):
        act = decide(p, history, now=T0 + i, probabilities={"workers": 0.5, "model": 0.3})
        assert isinstance(act, Act), act
        assert act.attempt == i + 1
        order.append((act.cause, act.remedy))
        history.append(Attempt(act.cause, act.remedy, "unchanged"))
        p.settled("api", "memory")
    assert [c for c, _ in order] == ["workers"] * 3 + ["model"] * 3 + ["cache"] * 3
    assert order[:3] == [("workers", "adjust_pool_size"), ("workers", "limit_queue_size"),
                         ("workers", "improve_cleanup")]  # fmt: skip
    final = decide(p, history, now=T0 + 100)
    assert isinstance(final, Escalate)
    assert "every remedy for memory has been tried" in final.reason


def test_the_attempt_limit_escalates() -> None:
    p = planner(max_attempts=2)
    history = [Attempt("cache", "reduce_ttl", "unchanged"),
               Attempt("cache", "increase_eviction", "regressed")]  # fmt: skip
    decision = decide(p, history)
    assert isinstance(decision, Escalate)
    assert "attempt limit" in decision.reason


def test_act_carries_validated_defaults_dry_run_and_device() -> None:
    p = Planner(PlannerConfig(dry_run=True, device="cuda"))
    act = decide(p, [], probabilities={"model": 1.0})
    assert act == Act("model", "use_mps_efficiently",
                      {"memory_fraction": 0.8, "empty_cache": True}, attempt=1,
                      dry_run=True, device="cuda", probability=1.0)  # fmt: skip
    p.settled("api", "memory")
    plain = p.next_remedy("memory", {"cache": 1.0}, [])
    assert isinstance(plain, Act) and plain.device is None and plain.dry_run


def test_one_remedy_in_flight_per_service_and_area() -> None:
    p = planner()
    assert isinstance(decide(p, []), Act)
    other_incident = decide(p, [], now=T0 + 5, incident="inc-2")
    assert isinstance(other_incident, Wait) and "in flight for api/memory" in other_incident.reason
    assert isinstance(decide(p, [], now=T0 + 5, service="web"), Act)  # another service
    # an unverified attempt in the history is in flight too
    pending = decide(p, [Attempt("cache", "reduce_ttl")], now=T0 + 5, service="db")
    assert isinstance(pending, Wait)
    p.settled("api", "memory")
    assert isinstance(decide(p, [Attempt("cache", "reduce_ttl", "unchanged")], T0 + 6), Act)


def test_cooldown_per_service_in_event_time() -> None:
    p = planner(cooldown_s=30)
    assert isinstance(decide(p, []), Act)
    p.settled("api", "memory")
    history = [Attempt("cache", "reduce_ttl", "unchanged")]
    waiting = decide(p, history, now=T0 + 29.9)
    assert waiting == Wait("api is cooling down until 1700000030", T0 + 30)
    assert isinstance(decide(p, history, now=T0 + 30), Act)


def test_circuit_breaker_per_service_per_hour() -> None:
    p = planner(max_per_service_per_hour=2)
    for i in range(2):
        assert isinstance(decide(p, [], now=T0 + i * 60, incident=f"inc-{i}"), Act)
        p.settled("api", "memory")
    tripped = decide(p, [], now=T0 + 600, incident="inc-9")
    assert isinstance(tripped, Escalate) and "in the last hour" in tripped.reason
    assert isinstance(decide(p, [], now=T0 + 3601, incident="inc-10"), Act)  # window passed


def test_circuit_breaker_global_per_minute() -> None:
    p = planner(max_global_per_minute=3)
    for i in range(3):
        assert isinstance(decide(p, [], now=T0 + i, service=f"svc-{i}"), Act)
    tripped = decide(p, [], now=T0 + 10, service="svc-9")
    assert isinstance(tripped, Escalate) and "overall in the last minute" in tripped.reason
    assert isinstance(decide(p, [], now=T0 + 61, service="svc-9"), Act)


def test_rewards_favouring_the_third_remedy_rank_it_first() -> None:
    def learned(seed: int) -> list[str]:
        p = Planner(PlannerConfig(seed=seed))
        for i in range(40):
            p.reward("latency", "network", "reduce_payload_size", i % 10 == 0)
            p.reward("latency", "network", "use_compression", i % 8 == 0)
            p.reward("latency", "network", "optimize_routes", i % 10 != 0)
        firsts = []
        for incident in range(20):
            act = p.next_remedy("latency", {"network": 1.0}, [], key=f"inc-{incident}")
            assert isinstance(act, Act)
            firsts.append(act.remedy)
        return firsts

    first = learned(seed=7)
    assert first == ["optimize_routes"] * 20
    assert learned(seed=7) == first  # deterministic given seed and inputs


def test_thompson_sampling_is_seeded_and_explores_with_little_evidence() -> None:
    def picks(seed: int) -> list[str]:
        bandit = RemedyBandit(seed=seed)
        bandit.reward("cache", "expiry", "adjust_ttl", False)
        names = ["adjust_ttl", "predictive_load", "background_refresh"]
        return [bandit.rank("cache", "expiry", names, key=str(k))[0] for k in range(30)]

    assert picks(1) == picks(1)
    assert len(set(picks(1))) > 1  # uncertain posteriors are sampled, not just sorted


def test_mean_mode_ranks_by_posterior_mean() -> None:
    bandit = RemedyBandit(mode="mean")
    for _ in range(3):
        bandit.reward("memory", "workers", "improve_cleanup", True)
    ranked = bandit.rank("memory", "workers", ["adjust_pool_size", "improve_cleanup"])
    assert ranked == ["improve_cleanup", "adjust_pool_size"]


def test_bandit_state_round_trips_and_rejects_garbage() -> None:
    bandit = RemedyBandit(seed=3, prior_strength=4.0)
    bandit.reward("cache", "capacity", "compress_data", True)
    bandit.reward("memory", "cache", "compress_data", False)
    again = RemedyBandit.loads(bandit.dumps())
    assert again.dumps() == bandit.dumps()
    assert again.posterior("cache", "capacity", "compress_data") == (4.0 / 3 + 1, 1.0)
    assert again.posterior("memory", "cache", "compress_data") == (4.0 / 3, 2.0)
    with pytest.raises(ValueError, match="format"):
        RemedyBandit.loads('{"format": 99}')
    with pytest.raises(ValueError, match="not a remedy"):
        bandit.reward("memory", "cache", "shard_data", True)


def test_verdicts_map_to_rewards() -> None:
    assert [verdict_reward(v) for v in ("resolved", "improved", "unchanged", "regressed")] == [
        True, False, False, False,
    ]  # fmt: skip
    assert verdict_reward("no_data") is None
    with pytest.raises(ValueError, match="unknown verdict"):
        verdict_reward("maybe")


def test_decide_for_a_diagnosis() -> None:
    diagnosis = Diagnosis(
        diagnosis_id="d-1", breach_id="b-1", incident_id="inc-7", service="api",
        area="cache", cause="expiry", probabilities={"expiry": 0.8, "capacity": 0.2},
        decider="prior", top_features=[], attribution_entropy=0.5, attribution_sparsity=0.5,
        window_end=T0,
    )  # fmt: skip
    act = Planner(PlannerConfig()).decide_for(diagnosis, [], now=T0)
    assert isinstance(act, Act) and (act.cause, act.remedy) == ("expiry", "adjust_ttl")


def test_an_act_becomes_a_signed_command() -> None:
    from perfloop.actions.planner import command_for
    from perfloop.actions.signing import Keyring, verify

    keys = Keyring.parse("planner-secret-0123456789")
    p = Planner(PlannerConfig(dry_run=True))
    act = decide(p, [], probabilities={"model": 1.0})
    assert isinstance(act, Act)
    cmd = command_for(act, incident_id="inc-1", service="api", area="memory", now=T0,
                      keys=keys, ttl_s=60.0)  # fmt: skip
    assert (cmd.action_id, cmd.remedy, cmd.device, cmd.dry_run) == (
        "inc-1:a1", "use_mps_efficiently", "mps", True,
    )  # fmt: skip
    assert verify(cmd, keys, now=T0 + 1) is None


def test_a_ranking_at_event_time_ignores_outcomes_verified_later() -> None:
    from perfloop.actions.bandit import RemedyBandit

    bandit = RemedyBandit(seed=3)
    names = ["reduce_ttl", "increase_eviction", "compress_data"]
    for i in range(30):
        bandit.reward("memory", "cache", "compress_data", True, ts=2_000.0 + i)
        bandit.reward("memory", "cache", "reduce_ttl", False, ts=2_000.0 + i)
    assert bandit.rank("memory", "cache", names, key="k", now=1_000.0) == names
    assert bandit.rank("memory", "cache", names, key="k", now=3_000.0)[0] == "compress_data"
    restored = RemedyBandit.loads(bandit.dumps())
    assert restored.rank("memory", "cache", names, key="k", now=1_000.0) == names
