"""``perfloop worker``: create the topics and run the Faust application until stopped.

With ``worker.http_port`` (default 8000; 0: off) the worker serves ``/healthz`` and
``/readyz`` (see :mod:`perfloop.health`): ready once the broker has answered (the topics exist)
and a rebalance has completed, not ready while the group rebalances.
"""

from __future__ import annotations

import gc
import logging
import os
from typing import Any

from perfloop.actions.signing import Keyring
from perfloop.health import Readiness, probe_routes, serve
from perfloop.schemas.config import PerfloopConfig
from perfloop.schemas.topics import create_missing_topics, topic_catalog


def run_worker(config: PerfloopConfig, loglevel: str = "info") -> None:
    """Create missing topics, then run every stream stage of the worker in this process."""
    import faust

    from perfloop.streams.kafka.app import build_app
    from perfloop.streams.kafka.ingest import IngestService

    readiness = Readiness("waiting for the broker")
    server = serve(config.worker.http_port, probe_routes(readiness), "worker.http_port")
    try:
        created = create_missing_topics(config.broker.bootstrap, topic_catalog(config.topics))
        if created:
            logging.getLogger("perfloop.worker").info("created topics: %s", ", ".join(created))
        readiness.not_ready("the broker answered; waiting for the partition assignment")
        keys = Keyring.from_env(os.environ) if Keyring.configured(os.environ) else None
        app, ingest = build_app(config, keys)
        track_rebalances(app, readiness)
        worker = faust.Worker(app, IngestService(ingest), loglevel=loglevel, quiet=True)
        tune_gc()
        worker.execute_from_commandline()
    finally:
        if server is not None:
            server.close()


def track_rebalances(app: Any, readiness: Readiness) -> None:
    """Not ready from a revocation (a rebalance starts) until the rebalance completes."""

    async def revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        readiness.not_ready("rebalancing")

    async def completed(sender: Any, **kwargs: Any) -> None:
        assigned = len(app.consumer.assignment())
        readiness.ready(f"rebalance complete, {assigned} partitions assigned")

    app.on_partitions_revoked.connect(revoked)
    app.on_rebalance_complete.connect(completed)


GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Keep the cyclic garbage collector off the hot path.

    The modules a worker imports (torch, river, scipy, Faust) leave some 300,000 long-lived
    objects, and every full collection walks them all. They are moved out of its sight
    (``gc.freeze``) once the app is built, and collections start after 50,000 new objects
    instead of 700: the hot path frees its garbage by reference counting, so the collector
    has little to find, and a batch of 20,000 records (each a few objects) no longer
    triggers dozens of collections.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
