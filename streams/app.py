"""The Faust application: thin agents around the pure stages.

- ingest (:mod:`streams.ingest`, run beside the app): ``metrics`` -> ``perfloop.windows`` and
  ``metrics.dlq``, with offset-exact window checkpoints;
- ``detect``: ``perfloop.windows`` -> ``perfloop.breaches``, one detector and the recent
  window history per service in a table (:mod:`streams.service_state`; the diagnose stage
  reads that history);
- the diagnose stage and, with signing keys, the closed loop.

Every topic is keyed by service, so a service's windows, breaches and state share a
partition number and live on one worker.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import faust
from pydantic import ValidationError

from actions.signing import Keyring
from schemas.config import PerfloopConfig
from schemas.messages import Breach, WindowAggregate
from streams.batches import PartitionedTable, dead_letter_json, in_batches, writing_to
from streams.diagnose_stage import install_diagnose
from streams.history import decode as decode_history
from streams.ingest import PRODUCER_BATCH_BYTES, Ingest
from streams.loop_stage import install_loop
from streams.recovery import TableManager
from streams.service_state import ServiceState, current_history

log = logging.getLogger("perfloop.worker")

MAX_STATE_BYTES = 16 * 1024 * 1024
STREAM_BUFFER = 512  # events an agent's stream holds ahead of it, per partition (a batch)
# the agents' sends (table changelogs above all: a record a service a batch) wait this long
# to share produce requests, as Kafka's own producer does by default since 4.0; with no wait
# the worker spent about 15 % more CPU per single point (bench/bench_pipeline.py)
PRODUCER_LINGER_S = 0.005


@dataclass
class Topics:
    windows: Any
    breaches: Any
    dlq: Any


def build_app(config: PerfloopConfig, keys: Keyring | None = None) -> tuple[faust.App, Ingest]:
    """The worker's Faust app for ``config`` and the ingest that feeds it windows.

    With ``keys`` (the action channel's signing keys) the closed loop runs too."""
    names = config.topics.names
    partitions = config.topics.partitions
    app = faust.App(
        config.worker.app_id,
        broker=[f"kafka://{host.strip()}" for host in config.broker.bootstrap.split(",")],
        store="memory://",
        datadir=config.worker.state_dir,
        web_enabled=False,
        topic_partitions=partitions,
        topic_replication_factor=config.topics.replication_factor,
        consumer_auto_offset_reset="earliest",
        producer_max_request_size=MAX_STATE_BYTES + 65536,
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        producer_acks=-1,
        producer_linger=PRODUCER_LINGER_S,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        broker_session_timeout=config.worker.session_timeout_s,
        broker_heartbeat_interval=config.worker.heartbeat_interval_s,
        key_serializer="raw",
        value_serializer="raw",
        # windows are kilobytes (a service's series with their samples): hold a batch, no more
        stream_buffer_maxsize=STREAM_BUFFER,
        # recovery that loses no event read as it ends (see streams.recovery)
        TableManager=TableManager,
        # table writes for a batch of events name their partition (see detect_batch)
        Table=PartitionedTable,
    )

    def topic(*topic_names: str) -> Any:
        return app.topic(
            *topic_names,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=partitions,
        )

    topics = Topics(topic(names.windows), topic(names.breaches), topic(names.dlq))
    detect_state = app.Table(
        "detect-state",
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
        extra_topic_configs={"max.message.bytes": str(MAX_STATE_BYTES)},
    )
    ingest = Ingest(config)
    states: dict[bytes, ServiceState] = {}  # of the services seen since a rebalance
    revocations = [0]  # how many rebalances took partitions away

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def forget_states(app_: Any, revoked: Any, **_: Any) -> None:
        states.clear()  # a service may come back after another worker moved its state on
        revocations[0] += 1

    @app.agent(topics.windows)
    async def detect(stream: Any) -> None:
        await in_batches(stream, detect_batch)

    async def detect_batch(events: list[Any]) -> None:
        """Detect on a batch of windows (acked once this returns).

        Each breach is sent as its window is handled, and the batch's breaches are awaited
        together: a breach is durable before the detector state that remembers it is
        written, as one window at a time, but the batch waits for the broker once, not once
        a breach. Each service's history and detector state are written once a batch, after
        that wait, as one record. A window that is not a valid window goes to the dead-letter
        topic."""
        touched: dict[bytes, tuple[int, ServiceState]] = {}  # service -> (partition, state)
        sent: list[Any] = []
        revoked_before = revocations[0]
        for event in events:
            message = event.message
            try:
                window = WindowAggregate.model_validate_json(event.value)
            except ValidationError as exc:
                letter = dead_letter_json(message, str(exc))
                sent.append(await topics.dlq.send(key=message.key, value=letter))
                continue
            key = window.service.encode()
            held = touched.get(key)
            state = held[1] if held is not None else states.pop(key, None)
            if state is None:
                state = ServiceState.read(detect_state, key, config)
            touched[key] = (message.partition, state)
            breaches = state.observe(window, config.windows.history_windows)
            # each breach keeps the windows it saw, so its diagnosis does not depend on how
            # far detection has run ahead of diagnosis (a replay diagnoses the same)
            with writing_to(message.partition):
                for breach in breaches:
                    detect_state[b"b:" + breach.breach_id.encode()] = state.history_blob()
            for breach in breaches:
                value = breach.model_dump_json().encode()
                sent.append(await topics.breaches.send(key=key, value=value))
        await asyncio.gather(*sent)  # durable before the detector states that remember them
        for key, (partition, state) in touched.items():
            with writing_to(partition):
                state.write(detect_state, key)
        if revocations[0] == revoked_before:  # cached once all is written, if still ours
            states.update((key, state) for key, (_, state) in touched.items())

    def history_of(breach: Breach) -> list[WindowAggregate]:
        """The windows the breach was detected on."""
        snapshot = detect_state.get(b"b:" + breach.breach_id.encode())
        if snapshot is None:  # a redelivered, already diagnosed breach: the current history
            snapshot = current_history(detect_state, breach.service.encode())
        return decode_history(snapshot)

    def diagnosed(breach: Breach) -> None:
        """The breach's diagnosis is out: its snapshot of windows is no longer needed."""
        detect_state.pop(b"b:" + breach.breach_id.encode(), None)

    install_diagnose(app, config, topic, history_of, diagnosed)
    if keys is not None:
        install_loop(app, config, topic, keys)
    else:
        log.warning(
            "PERFLOOP_ACTION_KEY is not set: incidents, commands and verification are off; "
            "windows, detection and diagnosis run"
        )

    return app, ingest
