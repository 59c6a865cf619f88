"""The executor service: consume signed commands, apply them once, report every outcome.

A kafka-python consumer in group ``executor.group`` reads the actions topic with
auto-commit off. Each message goes through :class:`~perfloop.actions.runner.CommandRunner`; its
:class:`ActionResult` is produced to the action-results topic (keyed by service) and flushed,
and only then is the message's offset committed: at-least-once delivery, made
effectively-once by the sqlite dedupe store in ``executor.state_dir``.

At start-up, commands that were running when a previous process died are reported
``failed`` (``interrupted; not re-run``) and any result not yet reported is produced.
SIGTERM or SIGINT (or the ``stop`` event) stops polling; the command in flight finishes
(bounded by ``handler_timeout_s``), its offset is committed, and the clients close.

Run it with ``perfloop executor`` or ``python -m perfloop.actions.executor`` (configuration from
``PERFLOOP_CONFIG`` and ``PERFLOOP_*``; keys from ``PERFLOOP_ACTION_KEY``); tests and
embedders use :func:`run_executor` with a ``stop`` event, or :func:`start_in_thread`.

An executor that runs as its own process (in the main thread) serves ``/healthz`` and
``/readyz`` on ``executor.http_port`` (see :mod:`perfloop.health`): ready once the broker gave
the actions topic's partitions and the group assigned this member its share (none is a share
too, when the group has more members than partitions), not ready while it rebalances.
Executors embedded in a thread (the simulator's, the tests') serve nothing.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

from perfloop.actions.handlers import Handler, build_handlers
from perfloop.actions.kafka_clients import (
    CommitFailedError,
    ConsumerRebalanceListener,
    KafkaConsumer,
    KafkaError,
    KafkaProducer,
    OffsetAndMetadata,
    TopicPartition,
)
from perfloop.actions.runner import CommandRunner
from perfloop.actions.signing import Keyring
from perfloop.actions.store import ActionStore
from perfloop.health import Readiness, probe_routes, serve
from perfloop.schemas.config import PerfloopConfig, load_config
from perfloop.schemas.messages import ActionResult

log = logging.getLogger("perfloop.executor")


METADATA_TIMEOUT_S = 30.0


def default_executor_id() -> str:
    """``host-pid``, reduced to the characters a message name allows."""
    raw = f"{socket.gethostname()}-{os.getpid()}"
    return re.sub(r"[^A-Za-z0-9_.:/@-]", "_", raw)[:128]


class Executor:
    """One executor process's Kafka loop around a :class:`CommandRunner`."""

    def __init__(
        self,
        config: PerfloopConfig,
        keys: Keyring,
        handlers: Mapping[str, Handler] | None = None,
    ) -> None:
        self.config = config
        cfg = config.executor
        self.executor_id = cfg.executor_id or default_executor_id()
        self.store = ActionStore(cfg.state_dir)
        self.runner = CommandRunner(
            cfg, keys, build_handlers(cfg, dict(handlers or {})), self.store, self.executor_id
        )
        self.topic = config.topics.names.actions
        self.results_topic = config.topics.names.action_results
        self.producer = KafkaProducer(
            bootstrap_servers=config.broker.bootstrap, acks="all", linger_ms=0,
            client_id=f"perfloop-executor-{self.executor_id}"[:100],
        )  # fmt: skip
        self.consumer = KafkaConsumer(
            bootstrap_servers=config.broker.bootstrap, group_id=cfg.group,
            enable_auto_commit=False, auto_offset_reset="earliest",
            client_id=f"perfloop-executor-{self.executor_id}"[:100],
            group_instance_id=cfg.group_instance_id, session_timeout_ms=cfg.session_timeout_ms,
        )  # fmt: skip

    def publish(self, result: ActionResult) -> None:
        """Produce ``result`` keyed by service and wait until the broker has it."""
        key = (result.service or "").encode() or None
        future = self.producer.send(
            self.results_topic, key=key, value=result.model_dump_json().encode()
        )
        future.get(timeout=self.config.executor.send_timeout_s)
        self.producer.flush(timeout=self.config.executor.send_timeout_s)
        self.runner.reported(result)
        log.info("%s %s: %s", result.action_id, result.status, result.detail)

    def _await_topic_metadata(self) -> None:
        """Know the actions topic's partitions before joining the group.

        A member that joins before its client has the topic's metadata can be assigned
        nothing until the next metadata refresh (minutes), so wait for it first (bounded).
        """
        deadline = time.monotonic() + METADATA_TIMEOUT_S
        while not self.consumer.partitions_for_topic(self.topic):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"actions topic {self.topic!r}: no partition metadata after "
                    f"{METADATA_TIMEOUT_S:g} s (does the topic exist?)"
                )
            time.sleep(0.2)

    def run(
        self,
        stop: threading.Event,
        ready: Callable[[], None] | None = None,
        readiness: Readiness | None = None,
    ) -> None:
        """Recover, then consume until ``stop`` is set; always closes the clients.
        ``ready`` is called once subscribed; ``readiness`` follows the group's assignments."""
        try:
            for result in self.runner.recover():
                self.publish(result)
            self._await_topic_metadata()
            self.consumer.subscribe([self.topic], listener=_Assignments(readiness))
            if ready is not None:
                ready()
            while not stop.is_set():
                batch = self.consumer.poll(
                    timeout_ms=self.config.executor.poll_timeout_ms, max_records=10
                )
                for tp, records in batch.items():
                    for record in records:
                        origin = f"{record.topic}:{record.partition}:{record.offset}"
                        self.publish(self.runner.process(record.value or b"", origin))
                        self._commit(tp, record.offset + 1)
                        if stop.is_set():
                            break
                    if stop.is_set():
                        break
        finally:
            self.close()

    def _commit(self, tp: TopicPartition, offset: int) -> None:
        try:
            self.consumer.commit({tp: OffsetAndMetadata(offset, "", -1)})
        except (CommitFailedError, KafkaError) as exc:  # redelivery is deduped
            log.warning("commit of %s@%d failed: %s", tp, offset, exc)

    def close(self) -> None:
        for closer in (self.consumer.close, self.producer.close, self.store.close):
            try:
                closer()
            except Exception as exc:  # closing must not hide the original error
                log.warning("close failed: %s", exc)


class _Assignments(ConsumerRebalanceListener):
    """Tells ``readiness`` when the group assigned partitions and when it takes them back."""

    def __init__(self, readiness: Readiness | None) -> None:
        self.readiness = readiness

    def on_partitions_revoked(self, revoked: Any) -> None:
        if self.readiness is not None:
            self.readiness.not_ready("rebalancing")

    def on_partitions_assigned(self, assigned: Any) -> None:
        if self.readiness is not None:
            self.readiness.ready(f"assigned {len(assigned)} partitions of the actions topic")


def run_executor(
    config: PerfloopConfig,
    *,
    keys: Keyring | None = None,
    stop: threading.Event | None = None,
    handlers: Mapping[str, Handler] | None = None,
    ready: Callable[[], None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Run the executor until ``stop`` is set (or SIGTERM/SIGINT when in the main thread).

    ``keys`` default to ``PERFLOOP_ACTION_KEY``; ``handlers`` add handler objects by name.
    In the main thread it also serves the health endpoints on ``executor.http_port``.
    """
    keys = keys or Keyring.from_env(os.environ if environ is None else environ)
    stop = stop or threading.Event()
    readiness = Readiness("recovering, then joining the group")
    server = None
    if threading.current_thread() is threading.main_thread():
        _on_signals(stop)
        server = serve(config.executor.http_port, probe_routes(readiness), "executor.http_port")
    try:
        Executor(config, keys, handlers).run(stop, ready, readiness)
    finally:
        if server is not None:
            server.close()


def start_in_thread(
    config: PerfloopConfig,
    *,
    keys: Keyring,
    handlers: Mapping[str, Handler] | None = None,
    ready_timeout_s: float = 30.0,
) -> tuple[threading.Thread, threading.Event]:
    """Run the executor in a thread; returns once it is subscribed. Set the event to stop."""
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(
        target=run_executor, name="perfloop-executor", daemon=True,
        kwargs={"config": config, "keys": keys, "stop": stop, "handlers": handlers,
                "ready": ready.set},
    )  # fmt: skip
    thread.start()
    if not ready.wait(ready_timeout_s):
        stop.set()
        raise TimeoutError(f"executor did not subscribe within {ready_timeout_s:g}s")
    return thread, stop


def _on_signals(stop: threading.Event) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping after the command in flight", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m perfloop.actions.executor [config.toml]``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = list(argv or [])
    config = load_config(args[0] if args else None)
    run_executor(config)
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
