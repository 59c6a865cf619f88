"""The Faust application: thin agents around the pure stages.

- ingest (:mod:`perfloop.streams.kafka.ingest`, run beside the app): ``metrics`` ->
  ``perfloop.windows`` and ``metrics.dlq``, with offset-exact window checkpoints, and detection
  on each window as it closes -> ``perfloop.breaches`` (:mod:`perfloop.streams.detect_stage`);
- the diagnose stage and, with signing keys, the closed loop.

Every topic is keyed by service, so a service's windows, breaches and state share a
partition number and live on one worker.
"""

from __future__ import annotations

import logging
from typing import Any

import faust

from perfloop.actions.signing import Keyring
from perfloop.schemas.config import PerfloopConfig
from perfloop.schemas.topics import MAX_STATE_BYTES
from perfloop.streams.kafka.batches import PartitionedTable
from perfloop.streams.kafka.diagnose_agents import install_diagnose
from perfloop.streams.kafka.ingest import PRODUCER_BATCH_BYTES, Ingest
from perfloop.streams.kafka.loop_stage import install_loop
from perfloop.streams.kafka.recovery import TableManager

log = logging.getLogger("perfloop.worker")

STREAM_BUFFER = 512  # events an agent's stream holds ahead of it, per partition (a batch)
# the agents' sends (table changelogs above all) wait this long to share produce requests,
# as Kafka's own producer does by default since 4.0; with no wait the worker spent about 15 %
# more CPU per single point (bench/bench_pipeline.py, when detection was an agent here)
PRODUCER_LINGER_S = 0.005


def build_app(config: PerfloopConfig, keys: Keyring | None = None) -> tuple[faust.App, Ingest]:
    """The worker's Faust app for ``config`` and the ingest that feeds it windows.

    With ``keys`` (the action channel's signing keys) the closed loop runs too."""
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
        # windows (the loop reads them) are kilobytes: hold a batch, no more
        stream_buffer_maxsize=STREAM_BUFFER,
        # recovery that loses no event read as it ends (see perfloop.streams.kafka.recovery)
        TableManager=TableManager,
        # table writes for a batch of events name their partition
        # (see perfloop.streams.kafka.batches)
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

    ingest = Ingest(config)
    install_diagnose(app, config, topic)
    if keys is not None:
        install_loop(app, config, topic, keys)
    else:
        log.warning(
            "PERFLOOP_ACTION_KEY is not set: incidents, commands and verification are off; "
            "windows, detection and diagnosis run"
        )

    return app, ingest
