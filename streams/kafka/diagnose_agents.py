"""The diagnose stage's Faust agents: breaches to diagnoses, labels to the models.

The agents are thin: they read and validate the records, hand them to the pure
:class:`~perfloop.streams.diagnose_stage.DiagnoseStage`, and send what it returns; a record
that is not what its topic carries goes to the dead-letter topic.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from perfloop.schemas.config import PerfloopConfig
from perfloop.schemas.messages import Breach, Label, WindowAggregate
from perfloop.streams.detect_stage import HISTORY_HEADER
from perfloop.streams.diagnose_stage import DiagnoseStage, breach_history
from perfloop.streams.kafka.batches import dead_letter_json, in_batches

log = logging.getLogger("perfloop.diagnose")


def install_diagnose(
    app: Any, config: PerfloopConfig, topic: Callable[[str], Any]
) -> DiagnoseStage:
    """Add the diagnose and label agents to the worker's Faust ``app``."""
    names = config.topics.names
    stage = DiagnoseStage(
        config.diagnosis, Path(config.worker.state_dir) / "models", config.detection
    )
    breaches, diagnoses, labels, dlq = (
        topic(names.breaches),
        topic(names.diagnoses),
        topic(names.labels),
        topic(names.dlq),
    )

    @app.agent(breaches)
    async def diagnose(stream: Any) -> None:
        await in_batches(stream, diagnose_batch)

    async def diagnose_batch(events: list[Any]) -> None:
        """Diagnose a batch of breaches (acked once this returns), each from the windows it
        was detected on (its :data:`~perfloop.streams.detect_stage.HISTORY_HEADER`); the batch's
        diagnoses are awaited together. Consecutive breaches of one service (several areas
        in one window) share their windows, which are decoded once; only the current
        service's are kept, a few windows rather than a whole batch's."""
        sent: list[Any] = []
        decoded: dict[bytes, WindowAggregate] = {}
        service = None
        for event in events:
            msg = event.message
            try:
                breach = Breach.model_validate_json(event.value)
                if breach.service != service:
                    decoded, service = {}, breach.service
                history = breach_history(msg.headers, decoded)
            except (ValidationError, ValueError) as exc:
                sent.append(await dlq.send(key=msg.key, value=dead_letter_json(msg, str(exc))))
                continue
            if history is None:
                stage.without_history += 1
                log.warning(
                    "breach %s has no %s header: diagnosed without its windows",
                    breach.breach_id,
                    HISTORY_HEADER,
                )
            diagnosis = stage.diagnose(breach, history or [])
            value = diagnosis.model_dump_json().encode()
            sent.append(await diagnoses.send(key=breach.service.encode(), value=value))
        await asyncio.gather(*sent)

    @app.agent(labels)
    async def learn(stream: Any) -> None:
        async for event in stream.events():
            try:
                label = Label.model_validate_json(event.value)
            except ValidationError as exc:
                msg = event.message
                await dlq.send(key=msg.key, value=dead_letter_json(msg, str(exc)))
                continue
            stage.learn(label)

    return stage
