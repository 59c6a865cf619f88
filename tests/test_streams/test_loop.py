"""The incident state machine and verification, without Kafka."""

from __future__ import annotations

import numpy as np
import pytest

from perfloop.actions.planner import Planner
from perfloop.actions.signing import Keyring, verify
from perfloop.schemas.config import PerfloopConfig
from perfloop.schemas.messages import (
    ActionResult,
    Breach,
    Diagnosis,
    SeriesAggregate,
    WindowAggregate,
)
from perfloop.streams.incident import ServiceBook
from perfloop.streams.loop import Loop, LoopOutput

T0 = 1_790_000_000.0
KEYS = Keyring.parse("loop-test-secret-0123456789")


def window(i: int, memory: float | None, service: str = "api", noise: float = 0.01,
           seed: int = 0) -> WindowAggregate:  # fmt: skip
    series = []
    if memory is not None:
        rng = np.random.default_rng(seed * 1000 + i)
        sample = (memory * (1 + noise * rng.standard_normal(32))).tolist()
        series.append(
            SeriesAggregate(
                metric="memory_bytes", count=32, sum=float(sum(sample)), min=min(sample),
                max=max(sample), mean=float(np.mean(sample)), last=sample[-1],
                p50=float(np.median(sample)), p95=float(np.percentile(sample, 95)),
                p99=float(np.percentile(sample, 99)), sample=sample,
            )
        )  # fmt: skip
    return WindowAggregate(
        window_id=f"{service}:{i}", service=service, start=T0 + 10 * i, end=T0 + 10 * i + 10,
        series=series,
    )  # fmt: skip


def breach(first: int, last: int, service: str = "api") -> Breach:
    return Breach(
        breach_id=f"{service}:memory:{first}", service=service, area="memory",
        signal="memory_bytes.max", observed=40e9, threshold=33.6e9, direction="above",
        window_start=T0 + 10 * last, window_end=T0 + 10 * last + 10,
        first_window_start=T0 + 10 * first, windows=last - first + 1,
    )  # fmt: skip


def diagnosis(b: Breach, cause: str = "cache") -> Diagnosis:
    probs = {"cache": 0.1, "model": 0.1, "workers": 0.1}
    probs[cause] = 0.8
    return Diagnosis(
        diagnosis_id=f"{b.breach_id}:diag", breach_id=b.breach_id, incident_id=b.breach_id,
        service=b.service, area="memory", cause=cause, probabilities=probs, decider="prior",
        top_features=[], attribution_entropy=0.5, attribution_sparsity=0.5,
        window_end=b.window_end,
    )  # fmt: skip


def applied(action_id: str, status: str = "applied") -> ActionResult:
    return ActionResult(action_id=action_id, status=status, ts=T0, detail="ok")  # type: ignore[arg-type]


class Run:
    """A loop and a book, with everything the loop sent collected."""

    def __init__(self, **overrides: object) -> None:
        cfg = PerfloopConfig.model_validate(
            {"planner": {"cooldown_s": 0, **overrides.get("planner", {})},  # type: ignore[dict-item]
             "verification": {"settle_windows": 1, "post_windows": 3}}
        )  # fmt: skip
        self.loop = Loop(cfg, Planner(cfg.planner), KEYS)
        self.book = ServiceBook("api")
        self.sent = LoopOutput()
        self.next = 0

    def feed(self, out: LoopOutput) -> LoopOutput:
        self.sent.extend(out)
        for area, cause, remedy, success, ts in out.rewards:
            self.loop.planner.reward(area, cause, remedy, success, ts)
        return out

    def windows(self, count: int, memory: float | None, noise: float = 0.01) -> None:
        for _ in range(count):
            self.feed(self.loop.on_window(self.book, window(self.next, memory, noise=noise)))
            self.next += 1

    def states(self) -> list[str]:
        return [t.to_state for t in self.sent.transitions]


def open_incident(run: Run) -> Breach:
    run.windows(3, 40e9)
    b = breach(1, 2)
    run.feed(run.loop.on_breach(run.book, b))
    run.feed(run.loop.on_diagnosis(run.book, diagnosis(b)))
    return b


def test_cache_incident_is_resolved_by_reduce_ttl() -> None:
    run = Run()
    open_incident(run)
    (command,) = run.sent.commands
    assert (command.cause, command.remedy, command.attempt) == ("cache", "reduce_ttl", 1)
    assert verify(command, KEYS, now=command.issued_at) is None  # signed and valid
    run.feed(run.loop.on_result(run.book, applied(command.action_id)))
    run.windows(4, 20e9)  # settle + 3 post windows, well below the threshold
    assert run.states() == ["breached", "diagnosed", "acting", "verifying", "resolved"]
    (verdict,) = run.sent.verifications
    assert verdict.verdict == "resolved" and verdict.p_value is not None and verdict.p_value < 0.05
    assert verdict.effect_size is not None and verdict.effect_size > 0.4
    assert [(lb.cause, lb.source) for lb in run.sent.labels] == [("cache", "verification")]
    assert [r[:4] for r in run.sent.rewards] == [("memory", "cache", "reduce_ttl", True)]
    assert [t.seq for t in run.sent.transitions] == list(range(5))
    assert "memory" not in run.book.incidents


def test_first_remedy_does_not_help_second_resolves() -> None:
    run = Run()
    open_incident(run)
    first = run.sent.commands[0]
    run.feed(run.loop.on_result(run.book, applied(first.action_id)))
    run.windows(4, 40e9)  # no change
    assert run.sent.verifications[0].verdict == "unchanged"
    second = run.sent.commands[1]
    assert (second.remedy, second.attempt) == ("increase_eviction", 2)
    assert second.action_id != first.action_id
    run.feed(run.loop.on_result(run.book, applied(second.action_id)))
    run.windows(4, 18e9)
    assert [v.verdict for v in run.sent.verifications] == ["unchanged", "resolved"]
    assert [r[:4] for r in run.sent.rewards] == [
        ("memory", "cache", "reduce_ttl", False),
        ("memory", "cache", "increase_eviction", True),
    ]
    assert run.states()[-1] == "resolved"


def test_nothing_helps_escalates_at_the_attempt_limit_with_the_history() -> None:
    run = Run(planner={"max_attempts": 3})
    open_incident(run)
    for _ in range(3):
        run.feed(run.loop.on_result(run.book, applied(run.sent.commands[-1].action_id)))
        run.windows(4, 40e9)
    assert run.states()[-1] == "escalated"
    assert len(run.sent.commands) == 3
    escalation = run.sent.transitions[-1].detail["escalation"]
    assert [r["verdict"] for r in escalation["remedies"]] == ["unchanged"] * 3
    assert escalation["breach"]["breach_id"] == "api:memory:1"
    assert escalation["diagnoses"][0]["cause"] == "cache"


def test_noisy_metric_without_significant_change_is_not_resolved() -> None:
    run = Run()
    run.windows(3, 40e9, noise=0.6)
    b = breach(1, 2)
    run.feed(run.loop.on_breach(run.book, b))
    run.feed(run.loop.on_diagnosis(run.book, diagnosis(b)))
    run.feed(run.loop.on_result(run.book, applied(run.sent.commands[0].action_id)))
    run.windows(4, 38e9, noise=0.6)
    assert run.sent.verifications[0].verdict in {"unchanged", "improved"}
    assert "resolved" not in run.states()


def test_post_windows_without_data_give_no_data() -> None:
    run = Run()
    open_incident(run)
    run.feed(run.loop.on_result(run.book, applied(run.sent.commands[0].action_id)))
    run.windows(4, None)
    assert run.sent.verifications[0].verdict == "no_data"
    assert run.sent.rewards == []  # no evidence, no reward
    assert "resolved" not in run.states()


def test_rejected_command_escalates_and_failures_move_on() -> None:
    run = Run()
    open_incident(run)
    run.feed(run.loop.on_result(run.book, applied(run.sent.commands[0].action_id, "failed")))
    assert run.states()[-2:] == ["diagnosed", "acting"] and len(run.sent.commands) == 2
    run.feed(run.loop.on_result(run.book, applied(run.sent.commands[1].action_id, "rejected")))
    assert run.states()[-1] == "escalated"


def test_no_result_within_the_deadline_escalates() -> None:
    run = Run()
    open_incident(run)
    run.windows(40, 40e9)
    assert run.states()[-1] == "escalated"
    assert "no result" in run.sent.transitions[-1].reason


def test_past_the_deadline_a_result_that_may_be_unread_is_waited_for() -> None:
    """A restarted worker can read the windows of its downtime before a result it had
    handled once: while results may be unread, the deadline does not escalate."""
    run = Run()
    open_incident(run)
    (command,) = run.sent.commands
    for _ in range(40):
        window_end = T0 + 10 * run.next + 10
        behind = run.loop.result_overdue(run.book, window_end)
        run.feed(run.loop.on_window(run.book, window(run.next, 18e9), results_behind=behind))
        run.next += 1
    assert run.states()[-1] == "acting"  # 40 windows: 10 past the deadline, none escalated
    run.feed(run.loop.on_result(run.book, applied(command.action_id)))
    assert run.states()[-2:] == ["verifying", "resolved"]  # its windows were already there


def test_once_no_result_can_be_unread_the_deadline_escalates_at_its_first_window() -> None:
    live = Run()
    open_incident(live)
    live.windows(40, 40e9)
    waited = Run()
    open_incident(waited)
    for i in range(40):
        behind = i < 35  # the results are read up to their end after 35 windows
        out = waited.loop.on_window(waited.book, window(waited.next, 40e9), results_behind=behind)
        waited.feed(out)
        waited.next += 1
    assert waited.states()[-1] == "escalated"
    assert [t.model_dump() for t in waited.sent.transitions] == [
        t.model_dump() for t in live.sent.transitions
    ]


def test_diagnosis_before_breach_and_redelivery_are_harmless() -> None:
    run = Run()
    run.windows(3, 40e9)
    b = breach(1, 2)
    run.feed(run.loop.on_diagnosis(run.book, diagnosis(b)))  # arrives first
    assert run.sent.transitions == []
    run.feed(run.loop.on_breach(run.book, b))
    run.feed(run.loop.on_breach(run.book, b))  # redelivered
    run.feed(run.loop.on_diagnosis(run.book, diagnosis(b)))  # redelivered
    assert run.states() == ["breached", "diagnosed", "acting"]
    assert len(run.sent.commands) == 1


def test_a_second_breach_joins_the_open_incident() -> None:
    run = Run()
    open_incident(run)
    run.windows(2, 40e9)
    out = run.feed(run.loop.on_breach(run.book, breach(3, 4)))
    assert [t.reason for t in out.transitions] == ["breach api:memory:3 joined"]
    assert len(run.book.incidents) == 1


def test_book_round_trips_through_json_mid_incident() -> None:
    run = Run()
    open_incident(run)
    restored = ServiceBook.loads(run.book.dumps())
    assert restored.dumps() == run.book.dumps()
    assert restored.incidents["memory"].state == "acting"


def test_dry_run_commands_are_marked_and_teach_nothing() -> None:
    run = Run(planner={"dry_run": True})
    open_incident(run)
    assert run.sent.commands[0].dry_run
    run.feed(run.loop.on_result(run.book, applied(run.sent.commands[0].action_id)))
    run.windows(4, 40e9)
    assert run.sent.verifications[0].verdict == "unchanged"
    assert run.sent.rewards == [] and run.sent.labels == []


@pytest.mark.parametrize("post,expected", [(20e9, "resolved"), (34.5e9, "improved"),
                                           (48e9, "regressed")])  # fmt: skip
def test_verdicts_follow_the_post_windows(post: float, expected: str) -> None:
    run = Run()
    open_incident(run)
    run.feed(run.loop.on_result(run.book, applied(run.sent.commands[0].action_id)))
    run.windows(4, post)
    assert run.sent.verifications[0].verdict == expected


def test_a_result_replayed_before_its_command_is_held_until_the_command_is_issued() -> None:
    run = Run()
    run.windows(3, 40e9)
    b = breach(1, 2)
    run.feed(run.loop.on_breach(run.book, b))
    early = run.feed(run.loop.on_result(run.book, applied(f"{b.breach_id}:a1")))
    assert early.transitions == []
    run.feed(run.loop.on_diagnosis(run.book, diagnosis(b)))
    assert run.states() == ["breached", "diagnosed", "acting", "verifying"]
    assert run.sent.commands[0].action_id == f"{b.breach_id}:a1"


def test_windows_far_ahead_of_breach_diagnosis_and_result_give_the_live_verdicts() -> None:
    """A replay at full speed: every window reaches the loop before the breach it caused, its
    diagnosis and the recorded result; the loop must still send what it sent live."""
    live = Run()
    b = open_incident(live)
    live.feed(live.loop.on_result(live.book, applied(live.sent.commands[0].action_id)))
    live.windows(40, 20e9)

    replay = Run()
    replay.windows(3, 40e9)
    replay.windows(40, 20e9)  # 40 windows past the breach: the loop once kept only 24
    replay.feed(replay.loop.on_result(replay.book, applied(f"{b.breach_id}:a1")))
    replay.feed(replay.loop.on_breach(replay.book, b))
    replay.feed(replay.loop.on_diagnosis(replay.book, diagnosis(b)))

    assert live.states() == ["breached", "diagnosed", "acting", "verifying", "resolved"]
    for kind in ("transitions", "commands", "verifications", "labels"):
        assert [m.model_dump() for m in getattr(replay.sent, kind)] == [
            m.model_dump() for m in getattr(live.sent, kind)
        ], kind


def test_windows_are_kept_for_the_retained_span_of_event_time() -> None:
    run = Run()
    retained = run.loop.config.verification.retained_windows
    run.windows(retained + 80, 20e9)
    newest = run.book.windows[-1][0]
    # every window that starts within `retained` window lengths of the newest, and no other
    assert [s for s, _ in run.book.windows] == [newest - 10 * i for i in range(retained, -1, -1)]
    assert len(run.book.archive.store) == retained + 1
    old = run.feed(run.loop.on_window(run.book, window(0, 20e9)))  # older than the span
    assert old.transitions == [] and len(run.book.archive.store) == retained + 1
    again = run.book.archive.get("api", newest)
    assert again is not None and again.observations["memory_bytes.max"].stat is not None


def test_a_remedy_held_back_by_the_cooldown_is_issued_at_the_same_window_in_a_replay() -> None:
    """After an executor failure the next remedy waits out the cooldown (25 s) and goes out
    at the end of the first window past it, whether that window arrives after the failure
    (live) or long before it (a replay at full speed)."""
    live = Run(planner={"cooldown_s": 25})
    b = open_incident(live)
    first = live.sent.commands[0].action_id
    live.feed(live.loop.on_result(live.book, applied(first, "failed")))
    assert len(live.sent.commands) == 1 and live.book.incidents["memory"].waiting
    live.windows(6, 40e9)
    assert len(live.sent.commands) == 2  # the window ending 30 s after the first command

    replay = Run(planner={"cooldown_s": 25})
    replay.windows(9, 40e9)
    replay.feed(replay.loop.on_result(replay.book, applied(first, "failed")))
    replay.feed(replay.loop.on_breach(replay.book, b))
    replay.feed(replay.loop.on_diagnosis(replay.book, diagnosis(b)))

    issued = [c.issued_at - live.sent.commands[0].issued_at for c in live.sent.commands]
    assert issued == [0.0, 30.0]
    for kind in ("transitions", "commands"):
        assert [m.model_dump() for m in getattr(replay.sent, kind)] == [
            m.model_dump() for m in getattr(live.sent, kind)
        ], kind


def test_a_command_without_result_escalates_at_the_same_window_in_a_replay() -> None:
    live = Run()
    b = open_incident(live)
    live.windows(40, 40e9)
    assert live.states()[-1] == "escalated"

    replay = Run()
    replay.windows(43, 40e9)  # the recording holds no result: the executor never answered
    replay.feed(replay.loop.on_breach(replay.book, b))
    replay.feed(replay.loop.on_diagnosis(replay.book, diagnosis(b)))
    assert [t.model_dump() for t in replay.sent.transitions] == [
        t.model_dump() for t in live.sent.transitions
    ]
