"""``perfloop worker``: create the topics and run the Faust application until stopped."""

from __future__ import annotations

import logging
import os

from actions.signing import Keyring
from schemas.config import PerfloopConfig
from schemas.topics import create_missing_topics, topic_catalog


def run_worker(config: PerfloopConfig, loglevel: str = "info") -> None:
    """Create missing topics, then run every stream stage of the worker in this process."""
    import faust

    from streams.app import build_app
    from streams.ingest import IngestService

    created = create_missing_topics(config.broker.bootstrap, topic_catalog(config.topics))
    if created:
        logging.getLogger("perfloop.worker").info("created topics: %s", ", ".join(created))
    keys = Keyring.from_env(os.environ) if os.environ.get("PERFLOOP_ACTION_KEY") else None
    app, ingest = build_app(config, keys)
    worker = faust.Worker(app, IngestService(ingest), loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
