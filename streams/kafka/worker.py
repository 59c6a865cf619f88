"""``perfloop worker``: create the topics and run the Faust application until stopped."""

from __future__ import annotations

import gc
import logging
import os

from perfloop.actions.signing import Keyring
from perfloop.schemas.config import PerfloopConfig
from perfloop.schemas.topics import create_missing_topics, topic_catalog


def run_worker(config: PerfloopConfig, loglevel: str = "info") -> None:
    """Create missing topics, then run every stream stage of the worker in this process."""
    import faust

    from perfloop.streams.kafka.app import build_app
    from perfloop.streams.kafka.ingest import IngestService

    created = create_missing_topics(config.broker.bootstrap, topic_catalog(config.topics))
    if created:
        logging.getLogger("perfloop.worker").info("created topics: %s", ", ".join(created))
    keys = Keyring.from_env(os.environ) if os.environ.get("PERFLOOP_ACTION_KEY") else None
    app, ingest = build_app(config, keys)
    worker = faust.Worker(app, IngestService(ingest), loglevel=loglevel, quiet=True)
    tune_gc()
    worker.execute_from_commandline()


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
