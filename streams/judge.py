"""Judging an applied remedy: the windows the loop waits for, the area's test, the verdict.

After a command's result says ``applied`` (or, without one, after it was issued) the loop
skips ``settle_windows`` windows and takes the next ``post_windows``; the breach's trigger
names the test (:class:`~perfloop.areas.base.VerificationTest`) that compares their
observations with the baseline's, under the service's rule for that trigger.
"""

from __future__ import annotations

from perfloop.areas import registry
from perfloop.schemas.config import PerfloopConfig
from perfloop.schemas.messages import Verification
from perfloop.streams.incident import AttemptRecord, Incident, ServiceBook


def judge(
    config: PerfloopConfig, book: ServiceBook, inc: Incident, att: AttemptRecord
) -> Verification | None:
    """The verdict on ``att``, the incident's current attempt; ``None`` while the post-action
    windows have not all come."""
    vcfg = config.verification
    since = att.issued_at if att.applied_at is None else att.applied_at
    after = book.windows_from(since, vcfg.settle_windows + vcfg.post_windows)
    after = after[vcfg.settle_windows :]
    if len(after) < vcfg.post_windows:
        return None
    post_windows = after[: vcfg.post_windows]
    post = [w.observations[inc.signal] for w in post_windows if inc.signal in w.observations]
    trigger = registry.trigger(inc.area, inc.signal)
    rule = config.detection.for_service(inc.service).rule(trigger.rule, trigger.default_rule)
    result = trigger.test.verify(rule, book.baseline_for(inc, att), post, vcfg)
    return Verification(
        verification_id=f"{att.action_id}:v",
        incident_id=inc.incident_id,
        action_id=att.action_id,
        service=inc.service,
        area=inc.area,
        verdict=result.verdict,
        baseline=result.baseline,
        post=result.post,
        statistic=result.statistic,
        p_value=result.p_value,
        effect_size=result.effect_size,
        clear_condition_met=result.clear_condition_met,
        window_end=post_windows[-1].end,
    )
