"""Running a simulation against Kafka: ``perfloop simulate`` and :func:`run`.

Every ``tick_s`` seconds of wall time the simulation's new points go to the metrics topic as
columnar ``MetricBatch`` messages, one per (service, metric), keyed by service. By default an
executor runs alongside in a thread (:func:`perfloop.actions.executor.start_in_thread`) with the
``simulator`` handler as its default handler, so commands the loop sends act on the simulated
services; its signing keys come from ``PERFLOOP_ACTION_KEY``. The run ends after
``duration_s`` seconds of wall time, having sent the points of exactly that span even when a
send stalled, or when ``stop`` is set (SIGINT or SIGTERM on the command line), after sending
the points due until then; it stops the executor and closes the producer before returning.

Detection compares throughput with a target it must be told: the run prints each service's
``throughput_target_rps`` as the ``[detection.services.<name>]`` configuration to use.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from types import FrameType

from perfloop.actions.executor import start_in_thread
from perfloop.actions.kafka_clients import KafkaProducer
from perfloop.actions.signing import Keyring
from perfloop.schemas.config import PerfloopConfig, load_config
from perfloop.schemas.topics import create_missing_topics, topic_catalog
from perfloop.simulator.handler import SimulatorHandler
from perfloop.simulator.scenario import Scenario, detection_toml, load_scenario
from perfloop.simulator.simulation import Outcome, Simulation

Echo = Callable[[str], None]


def _print(line: str) -> None:
    print(line, flush=True)


def with_simulator_handler(config: PerfloopConfig) -> PerfloopConfig:
    """``config`` with ``executor.default_handler`` set to ``simulator``."""
    executor = config.executor.model_copy(update={"default_handler": "simulator"})
    return config.model_copy(update={"executor": executor})


def describe(sim: Simulation) -> list[str]:
    """What the simulation will do, as lines for the terminal."""
    names = ", ".join(s.name for s in sim.services)
    count = f"{len(sim.services)} service{'' if len(sim.services) == 1 else 's'}"
    lines = [
        f"simulating {count} ({names}): seed {sim.seed}, "
        f"{sim.rate:g} points/s per metric, speed {sim.speed:g}x",
        "throughput targets (put these in the configuration):",
        *("  " + line for line in detection_toml(sim.scenario).splitlines()),
    ]
    for f in sim.scenario.faults:
        lines.append(f"fault at {f.at:g}s: {f.service} {f.area}/{f.cause} strength {f.strength:g}")
    return lines


def run(
    config: PerfloopConfig,
    scenario: Scenario,
    stop: threading.Event | None = None,
    *,
    seed: int | None = None,
    rate: float | None = None,
    speed: float | None = None,
    duration_s: float | None = None,
    with_executor: bool = True,
    keys: Keyring | None = None,
    tick_s: float = 0.5,
    echo: Echo | None = _print,
    environ: Mapping[str, str] | None = None,
) -> Simulation:
    """Run a simulation of ``scenario`` until ``stop`` is set or ``duration_s`` has passed;
    return the simulation (its faults and outcomes tell what happened)."""
    stop = stop or threading.Event()
    say = echo or (lambda line: None)
    keyring: Keyring | None = None
    if with_executor:
        keyring = keys
        if keyring is None:
            try:
                keyring = Keyring.from_env(os.environ if environ is None else environ)
            except ValueError as exc:
                raise ValueError(f"{exc} (or simulate with --no-executor)") from None
    sim = Simulation(scenario, seed=seed, rate=rate, speed=speed)
    for line in describe(sim):
        say(line)
    names = config.topics.names
    wanted = {names.metrics} | ({names.actions, names.action_results} if with_executor else set())
    specs = [t for t in topic_catalog(config.topics) if t.name in wanted]
    create_missing_topics(config.broker.bootstrap, specs)
    producer = KafkaProducer(
        bootstrap_servers=config.broker.bootstrap, acks=1, linger_ms=20,
        client_id="perfloop-simulator",
    )  # fmt: skip
    executor: tuple[threading.Thread, threading.Event] | None = None

    def on_apply(outcome: Outcome) -> None:
        say(f"applied {outcome.detail}")

    try:
        if keyring is not None:
            handler = SimulatorHandler(sim, on_apply)
            executor = start_in_thread(
                with_simulator_handler(config), keys=keyring, handlers={"simulator": handler}
            )
        end = None if duration_s is None else time.time() + duration_s
        while True:
            # a tick sends every point due up to ``now``, however long the last send took, so
            # the tick at the end or after a stop completes the run's span, and no more
            now = time.time() if end is None else min(time.time(), end)
            last = stop.is_set() or now == end
            for batch in sim.tick(now):
                producer.send(
                    names.metrics,
                    key=batch["service"].encode(),
                    value=json.dumps(batch, separators=(",", ":")).encode(),
                )
            producer.flush(timeout=config.executor.send_timeout_s)
            if last:
                break
            stop.wait(tick_s if end is None else max(0.0, min(tick_s, end - time.time())))
    finally:
        if executor is not None:
            thread, executor_stop = executor
            executor_stop.set()
            thread.join(config.executor.handler_timeout_s + 10)
        producer.close(timeout=10)
    for fault in sim.faults:
        state = (
            f"resolved at {fault.resolved_at:g}s by {fault.resolved_by}"
            if fault.resolved_at is not None
            else ("active" if fault.active else "not started")
        )
        say(f"fault {fault.service} {fault.area}/{fault.cause}: {state}")
    return sim


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handle)
    return stop


def main(args: argparse.Namespace) -> int:
    """``perfloop simulate`` (see :func:`run`); a scenario-less run simulates one healthy
    service, ``api``."""
    config = load_config(args.config)
    scenario = load_scenario(args.scenario) if args.scenario else Scenario()
    stop = _stop_on_signals() if threading.current_thread() is threading.main_thread() else None
    run(
        config, scenario, stop, seed=args.seed, rate=args.rate, speed=args.speed,
        duration_s=args.duration, with_executor=args.executor,
    )  # fmt: skip
    sys.stdout.flush()
    return 0
