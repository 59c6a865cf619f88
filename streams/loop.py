"""The closed loop for one service: breach -> diagnosis -> command -> result -> verdict.

Pure logic, no Kafka: each ``on_*`` method takes the service's :class:`ServiceBook` and one
event, changes the book, and returns what to send (:class:`LoopOutput`). Time is event time
only (window boundaries and the event time a command was issued at), so replaying the same
topics gives the same incidents, commands and verdicts.

The four inputs reach the loop in an order that depends on how fast each stage ran: in a
full-speed replay a service's windows can come long before the breach they caused. So what
depends on windows (the baseline, the post-action windows, a wait, the result deadline) is
decided from the windows archived so far by their event time, including those that came
before the event at hand, never by which came first; within ``verification.retained_windows``
the outcome is the same in any order.

A command whose result has not come when a window past its deadline does is escalated only
once the caller says no result can still be waiting unread (``results_behind``): a worker
restarted after a long stop may read the windows of its downtime before a result it had
already handled once. The escalation then carries the end of that first window past the
deadline, however long the wait.

States: breached -> diagnosed -> acting (command sent) -> verifying (result ``applied``) ->
resolved, or back to diagnosed for the next remedy, or escalated (remedies exhausted,
attempt limit, circuit breaker, executor rejection or repeated failure, no result within
``result_deadline_windows`` windows). Every change is an :class:`IncidentTransition`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perfloop.actions.bandit import verdict_reward
from perfloop.actions.planner import Act, Attempt, Escalate, Planner, command_for
from perfloop.actions.signing import Keyring
from perfloop.schemas.config import PerfloopConfig
from perfloop.schemas.messages import (
    ActionCommand,
    ActionResult,
    Breach,
    Diagnosis,
    IncidentTransition,
    Label,
    Verification,
    WindowAggregate,
)
from perfloop.streams.incident import AttemptRecord, Incident, RecentWindow, ServiceBook
from perfloop.streams.judge import judge
from perfloop.streams.signals import window_observations

MAX_EXECUTOR_FAILURES = 2


@dataclass
class LoopOutput:
    transitions: list[IncidentTransition] = field(default_factory=list)
    commands: list[ActionCommand] = field(default_factory=list)
    verifications: list[Verification] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    rewards: list[tuple[str, str, str, bool, float]] = field(default_factory=list)

    def extend(self, other: LoopOutput) -> None:
        self.transitions += other.transitions
        self.commands += other.commands
        self.verifications += other.verifications
        self.labels += other.labels
        self.rewards += other.rewards


class Loop:
    """Moves a service's incidents through their states (see the module docstring)."""

    def __init__(self, config: PerfloopConfig, planner: Planner, keys: Keyring) -> None:
        self.config = config
        self.planner = planner
        self.keys = keys

    # -- helpers ---------------------------------------------------------------------------
    def _move(
        self,
        out: LoopOutput,
        inc: Incident,
        to: str,
        reason: str,
        ts: float,
        detail: dict[str, Any] | None = None,
    ) -> None:
        out.transitions.append(
            IncidentTransition(
                incident_id=inc.incident_id,
                seq=inc.seq,
                service=inc.service,
                area=inc.area,
                from_state=inc.state if inc.seq else None,
                to_state=to,
                reason=reason[:4000],
                attempt=len(inc.attempts),
                ts=ts,
                detail=detail or {},
            )
        )
        inc.seq += 1
        inc.state = to

    def _escalate(
        self, out: LoopOutput, book: ServiceBook, inc: Incident, reason: str, ts: float
    ) -> None:
        self._move(out, inc, "escalated", reason, ts, {"escalation": inc.summary()})
        self.planner.settled(inc.service, inc.area)
        book.close(inc.area)

    # -- events ----------------------------------------------------------------------------
    def on_breach(self, book: ServiceBook, breach: Breach) -> LoopOutput:
        out = LoopOutput()
        inc = book.incidents.get(breach.area)
        if inc is not None:
            if all(b["breach_id"] != breach.breach_id for b in inc.breaches):
                inc.breaches.append(breach.model_dump(mode="json"))
                self._move(
                    out, inc, inc.state, f"breach {breach.breach_id} joined", breach.window_end
                )
            return out
        if breach.breach_id in book.closed:
            return out  # a redelivered breach of a closed incident
        inc = Incident(
            incident_id=breach.breach_id,
            service=breach.service,
            area=breach.area,
            signal=breach.signal,
            state="breached",
            first_window_start=breach.first_window_start,
            window_end=breach.window_end,
            breaches=[breach.model_dump(mode="json")],
        )
        book.incidents[breach.area] = inc
        book.fill_baseline(inc)
        reason = f"{breach.signal} {breach.observed:g} {breach.direction} {breach.threshold:g}"
        self._move(out, inc, "breached", reason, breach.window_end)
        pending = book.pending_diagnoses.pop(breach.breach_id, None)
        if pending is not None:
            out.extend(self.on_diagnosis(book, Diagnosis.model_validate(pending)))
        return out

    def on_diagnosis(self, book: ServiceBook, diagnosis: Diagnosis) -> LoopOutput:
        out = LoopOutput()
        inc = book.incidents.get(diagnosis.area)
        known = inc is not None and any(b["breach_id"] == diagnosis.breach_id for b in inc.breaches)
        if inc is None or not known:
            if diagnosis.breach_id not in book.closed:
                book.pending_diagnoses[diagnosis.breach_id] = diagnosis.model_dump(mode="json")
            return out
        if any(d["diagnosis_id"] == diagnosis.diagnosis_id for d in inc.diagnoses):
            return out
        inc.diagnoses.append(
            {
                k: getattr(diagnosis, k)
                for k in ("diagnosis_id", "cause", "probabilities", "decider")
            }
        )
        inc.probabilities = dict(diagnosis.probabilities)
        if inc.state != "breached":
            return out  # a later breach joined an incident already being worked on
        p = diagnosis.probabilities[diagnosis.cause]
        self._move(
            out,
            inc,
            "diagnosed",
            f"cause {diagnosis.cause} (p={p:.2f}, {diagnosis.decider})",
            diagnosis.window_end,
            {"probabilities": diagnosis.probabilities},
        )
        out.extend(self._plan(book, inc, diagnosis.window_end))
        return out

    def _plan(self, book: ServiceBook, inc: Incident, now: float) -> LoopOutput:
        """Decide the incident's next step at event time ``now``. A decision to wait is taken
        again at the end of each later window: those already archived first (a replay can
        deliver them before this event), then each window as it arrives (``on_window``)."""
        out = LoopOutput()
        history = [Attempt(a.cause, a.remedy, a.outcome) for a in inc.attempts]
        while True:
            decision = self.planner.decide(
                incident_id=inc.incident_id,
                service=inc.service,
                area=inc.area,
                probabilities=inc.probabilities,
                history=history,
                now=now,
            )
            if isinstance(decision, Escalate):
                self._escalate(out, book, inc, decision.reason, now)
                return out
            if isinstance(decision, Act):
                break
            inc.waiting = decision.reason
            later = book.next_window_end(now)
            if later is None:
                return out
            now = later
        inc.waiting = None
        command = command_for(
            decision,
            incident_id=inc.incident_id,
            service=inc.service,
            area=inc.area,
            now=now,
            keys=self.keys,
            ttl_s=self.config.planner.command_ttl_s,
        )
        inc.attempts.append(
            AttemptRecord(
                attempt=decision.attempt,
                action_id=command.action_id,
                cause=decision.cause,
                remedy=decision.remedy,
                params=dict(decision.params),
                issued_at=now,
                dry_run=decision.dry_run,
                command=command.model_dump(mode="json"),
            )
        )
        out.commands.append(command)
        dry = " (dry run)" if decision.dry_run else ""
        self._move(
            out,
            inc,
            "acting",
            f"{decision.cause}/{decision.remedy} sent{dry}",
            now,
            {"action_id": command.action_id, "params": decision.params},
        )
        held = book.pending_results.pop(command.action_id, None)
        if held is not None:
            out.extend(self.on_result(book, ActionResult.model_validate(held)))
        elif (late := book.next_window_end(self._result_deadline(now))) is not None:
            self._no_result(out, book, inc, late)  # windows past the deadline already came
        return out

    def _result_deadline(self, issued_at: float) -> float:
        """The event time after which a window without the command's result escalates."""
        deadline = self.config.verification.result_deadline_windows
        return issued_at + deadline * self.config.windows.length_s

    def _no_result(self, out: LoopOutput, book: ServiceBook, inc: Incident, at: float) -> None:
        att = inc.current
        assert att is not None
        deadline = self.config.verification.result_deadline_windows
        reason = f"no result for {att.action_id} within {deadline} windows"
        self._escalate(out, book, inc, reason, at)

    def on_result(self, book: ServiceBook, result: ActionResult) -> LoopOutput:
        out = LoopOutput()
        owner = [
            i
            for i in book.incidents.values()
            if any(a.action_id == result.action_id for a in i.attempts)
        ]
        if not owner:
            # a replay may deliver a result before the command is issued again: keep it
            if result.status != "duplicate" and result.incident_id not in book.closed:
                book.hold_result(result.action_id, result.model_dump(mode="json"))
            return out
        for inc in owner:
            att = inc.current
            if att is None or att.action_id != result.action_id or att.result is not None:
                continue
            if result.status == "duplicate":
                return out
            att.result, att.result_detail = result.status, result.detail[:500]
            if inc.state != "acting":
                return out
            if result.status == "applied":
                # the remedy acts from when it was applied; the result's time is part of the
                # recorded result, so a replay of the results topic gives the same windows
                att.applied_at = max(att.issued_at, result.ts)
                self._move(
                    out, inc, "verifying", f"{att.remedy} applied: {result.detail}", att.issued_at
                )
                out.extend(self._maybe_verify(book, inc))
            elif result.status == "rejected":
                self._escalate(
                    out,
                    book,
                    inc,
                    f"executor rejected {att.action_id}: {result.detail}",
                    att.issued_at,
                )
            else:
                inc.executor_failures += 1
                self.planner.settled(inc.service, inc.area)
                if inc.executor_failures >= MAX_EXECUTOR_FAILURES:
                    self._escalate(
                        out,
                        book,
                        inc,
                        f"executor {result.status} {inc.executor_failures} times",
                        att.issued_at,
                    )
                else:
                    self._move(
                        out,
                        inc,
                        "diagnosed",
                        f"executor {result.status}: {result.detail}",
                        att.issued_at,
                    )
                    out.extend(self._plan(book, inc, att.issued_at))
            return out
        return out

    def result_overdue(self, book: ServiceBook, window_end: float) -> bool:
        """Whether a window ending at ``window_end`` passes the result deadline of a command
        still waiting for its result (then ``on_window`` needs to know ``results_behind``)."""
        return any(
            inc.state == "acting"
            and inc.current is not None
            and window_end > self._result_deadline(inc.current.issued_at)
            for inc in book.incidents.values()
        )

    def on_window(
        self, book: ServiceBook, window: WindowAggregate, results_behind: bool = False
    ) -> LoopOutput:
        """Archive ``window`` and move the service's incidents on. ``results_behind``: action
        results may still be waiting unread, so a command past its result deadline is not
        escalated yet (see the module docstring)."""
        out = LoopOutput()
        det = self.config.detection.for_service(book.service)
        retained_s = self.config.verification.retained_windows * self.config.windows.length_s
        observed = RecentWindow(window.start, window.end, window_observations(window, det))
        if not book.add_window(observed, retained_s):
            return out
        for inc in list(book.incidents.values()):
            book.fill_baseline(inc)
            att = inc.current
            if inc.state == "verifying":
                out.extend(self._maybe_verify(book, inc))
            elif inc.state == "acting" and att is not None:
                # counted in event time: the first window that ends past the deadline
                if window.end > self._result_deadline(att.issued_at):
                    if att.overdue_at is None or window.end < att.overdue_at:
                        att.overdue_at = window.end
                    if not results_behind:
                        self._no_result(out, book, inc, att.overdue_at)
            elif inc.state == "diagnosed" and inc.waiting:
                out.extend(self._plan(book, inc, window.end))
        return out

    def _maybe_verify(self, book: ServiceBook, inc: Incident) -> LoopOutput:
        out = LoopOutput()
        att = inc.current
        assert att is not None
        verification = judge(self.config, book, inc, att)
        if verification is None:
            return out
        end = verification.window_end
        out.verifications.append(verification)
        att.verdict, att.verification_id = verification.verdict, verification.verification_id
        self.planner.settled(inc.service, inc.area)
        reward = verdict_reward(verification.verdict)
        if reward is not None and not att.dry_run:
            out.rewards.append((inc.area, att.cause, att.remedy, reward, end))
        detail = {
            "verification_id": verification.verification_id,
            "p_value": verification.p_value,
            "effect_size": verification.effect_size,
        }
        if verification.verdict == "resolved":
            self._move(out, inc, "resolved", f"{att.remedy} resolved {inc.area}", end, detail)
            if not att.dry_run:
                out.labels.append(
                    Label(
                        incident_id=inc.incident_id,
                        service=inc.service,
                        area=inc.area,
                        cause=att.cause,
                        source="verification",
                        ts=end,
                    )
                )
            book.close(inc.area)
            return out
        self._move(
            out, inc, "diagnosed", f"verdict {verification.verdict} for {att.remedy}", end, detail
        )
        out.extend(self._plan(book, inc, end))
        return out
