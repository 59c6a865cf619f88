"""The whole loop in one process, without Kafka, in simulated event time.

:func:`run_in_process` advances a simulated clock tick by tick (it never sleeps) and moves
every message through the same pure stages the worker and the executor run, over an
in-memory queue that stands for the topics:

- ``metrics``: :meth:`Simulation.tick` batches, JSON-encoded and keyed by service, go to
  :class:`~perfloop.streams.window_stage.WindowStage` (services hashed to ``topics.partitions``);
- ``perfloop.windows``: a :class:`~perfloop.streams.detect.Detector` and the recent windows per
  service (as the ingest's detect stage keeps them), then :meth:`Loop.on_window
  <perfloop.streams.loop.Loop>`;
- ``perfloop.breaches``: :class:`~perfloop.streams.diagnose_stage.DiagnoseStage` on the service's
  history, then ``Loop.on_breach``; ``perfloop.diagnoses``: ``Loop.on_diagnosis``;
- ``actions``: the executor's :class:`~perfloop.actions.runner.CommandRunner` (signature, expiry,
  catalog, at most once) with the ``simulator`` handler; ``action-results``: ``Loop.on_result``;
- ``perfloop.labels``: ``DiagnoseStage.learn``. The planner gets each event's rewards after
  its messages are queued, as the loop agent does after they are sent.

Messages are delivered first in, first out, each to its consumers in the order above, so a
window reaches the loop before the breach it causes, and a breach before its diagnosis. The
executor's clock is the simulation's event time: a command is applied, and its result
stamped, at the time the window that triggered it closed.

``python -m perfloop.simulator.harness [--scenario F] [--seed N]`` prints the report.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import zlib
from collections import deque
from pathlib import Path
from typing import Any

from perfloop.actions.handlers import build_handlers
from perfloop.actions.planner import Planner
from perfloop.actions.runner import CommandRunner
from perfloop.actions.signing import Keyring
from perfloop.actions.store import ActionStore
from perfloop.schemas.config import PerfloopConfig
from perfloop.schemas.messages import Breach, WindowAggregate
from perfloop.simulator.handler import SimulatorHandler
from perfloop.simulator.harness_ledger import Ledger
from perfloop.simulator.harness_report import HarnessReport
from perfloop.simulator.scenario import BUNDLED, Scenario, detection_overrides, load_scenario
from perfloop.simulator.simulation import Simulation
from perfloop.streams.decoded import RawRecord
from perfloop.streams.detect import Detector
from perfloop.streams.diagnose_stage import DiagnoseStage
from perfloop.streams.incident import ServiceBook
from perfloop.streams.loop import Loop, LoopOutput
from perfloop.streams.window_stage import WindowStage

#: Event time of the simulation's start (any time after 2000 would do).
START_TS = 1_700_000_000.0
#: The signing key of the in-process action channel.
HARNESS_KEY = "perfloop-in-process-key-0123456789"
DEFAULT_SCENARIO = BUNDLED / "learning.toml"


def harness_config(scenario: Scenario, base: PerfloopConfig | None = None) -> PerfloopConfig:
    """``base`` (default: the defaults) set up for an in-process run of ``scenario``: 10 s
    windows, each service's throughput target, one settle and three post windows, no
    cooldown, every remedy of an area allowed (9 attempts) and a circuit breaker that a long
    run of repeated faults does not trip; the executor's default handler is the simulator."""
    base = base or PerfloopConfig()
    services = {**base.detection.services, **detection_overrides(scenario)["services"]}
    return base.model_copy(
        update={
            "windows": base.windows.model_copy(update={"length_s": 10.0, "lateness_s": 2.0}),
            "detection": base.detection.model_copy(update={"services": services}),
            "verification": base.verification.model_copy(
                update={"settle_windows": 1, "post_windows": 3}
            ),
            "planner": base.planner.model_copy(
                update={
                    "cooldown_s": 0.0,
                    "max_attempts": 9,
                    "max_per_service_per_hour": 200,
                    "max_global_per_minute": 200,
                }  # fmt: skip
            ),
            "executor": base.executor.model_copy(update={"default_handler": "simulator"}),
        }
    )


def run_in_process(
    scenario: Scenario,
    config: PerfloopConfig | None = None,
    seed: int | None = None,
    *,
    rate: float | None = None,
    tick_s: float = 5.0,
    tail_s: float = 900.0,
    state_dir: str | Path | None = None,
    keys: Keyring | None = None,
) -> HarnessReport:
    """Run ``scenario`` through the whole loop (see the module docstring) and report.

    ``config`` defaults to :func:`harness_config`; a given one must carry the services'
    throughput targets. ``seed`` and ``rate`` override the scenario's. The run ends once
    every fault has started, been fixed and its incident closed, or ``tail_s`` simulated
    seconds after the last fault reached full strength. The diagnosis models and the
    executor's store live in ``state_dir`` (default: a temporary folder, removed afterwards).
    """
    config = config or harness_config(scenario)
    if state_dir is None:
        with tempfile.TemporaryDirectory(prefix="perfloop-harness-") as tmp:
            return _InProcess(scenario, config, seed, rate, Path(tmp), keys).run(tick_s, tail_s)
    return _InProcess(scenario, config, seed, rate, Path(state_dir), keys).run(tick_s, tail_s)


class _InProcess:
    """The stages of one worker and one executor, joined by an in-memory queue."""

    def __init__(
        self, scenario: Scenario, config: PerfloopConfig, seed: int | None, rate: float | None,
        state: Path, keys: Keyring | None,
    ) -> None:  # fmt: skip
        executor_cfg = config.executor.model_copy(update={"state_dir": str(state / "executor")})
        self.config = config.model_copy(update={"executor": executor_cfg})
        self.names = config.topics.names
        self.sim = Simulation(scenario, seed=seed, rate=rate, speed=1.0, start_ts=START_TS)
        self.now = START_TS
        self.stage = WindowStage(config.windows, config.ingest, source_topic=self.names.metrics)
        self.offsets: dict[int, int] = {}
        self.detectors: dict[str, Detector] = {}
        self.history: dict[str, list[WindowAggregate]] = {}
        self.diagnose = DiagnoseStage(config.diagnosis, state / "models")
        self.planner = Planner(config.planner)
        self.loop = Loop(self.config, self.planner, keys or Keyring.parse(HARNESS_KEY))
        self.books: dict[str, ServiceBook] = {}
        self.ledger = Ledger(START_TS)
        handler = SimulatorHandler(self.sim, self.ledger.applied)
        self.runner = CommandRunner(
            executor_cfg, self.loop.keys, build_handlers(executor_cfg, {"simulator": handler}),
            ActionStore(executor_cfg.state_dir), "in-process", clock=lambda: self.now,
        )  # fmt: skip
        self.queue: deque[tuple[str, Any]] = deque()
        self.windows = self.dead_letters = 0

    # -- the run ---------------------------------------------------------------------------
    def run(self, tick_s: float, tail_s: float) -> HarnessReport:
        faults = self.sim.scenario.faults
        ramped = max((f.at + f.ramp_s for f in faults), default=0.0)
        ticks = math.ceil((ramped + tail_s) / tick_s)
        try:
            for k in range(ticks + 1):
                self.now = START_TS + k * tick_s
                self._ingest(self.sim.tick(self.now))
                self._drain()
                if self.sim.clock >= ramped and self._settled():
                    break
        finally:
            self.runner.store.close()
        return self.ledger.report(
            self.sim.faults, self.sim.seed, self.sim.clock, self.windows, self.dead_letters
        )

    def _settled(self) -> bool:
        fixed = all(f.resolved_at is not None for f in self.sim.faults)
        return fixed and not any(book.incidents for book in self.books.values())

    def _ingest(self, batches: list[dict[str, Any]]) -> None:
        """``metrics`` -> the window stage, one batch of records per partition."""
        by_partition: dict[int, list[RawRecord]] = {}
        partitions = self.config.topics.partitions
        for batch in batches:
            key = batch["service"].encode()
            partition = zlib.crc32(key) % partitions
            offset = self.offsets.get(partition, -1) + 1
            self.offsets[partition] = offset
            value = json.dumps(batch, separators=(",", ":")).encode()
            by_partition.setdefault(partition, []).append(RawRecord(value, key, partition, offset))
        for partition, records in sorted(by_partition.items()):
            out = self.stage.process(partition, records, self.now)
            self.dead_letters += len(out.dead_letters)
            self.windows += len(out.windows)
            for window in out.windows:
                self.queue.append((self.names.windows, window))

    def _drain(self) -> None:
        names = self.names
        while self.queue:
            topic, msg = self.queue.popleft()
            if topic == names.windows:
                self._detect(msg)
                self._to_loop(msg.service, self.loop.on_window, msg)
            elif topic == names.breaches:
                self.ledger.breach(msg)
                self._diagnose(msg)
                self._to_loop(msg.service, self.loop.on_breach, msg)
            elif topic == names.diagnoses:
                self.ledger.diagnosis(msg)
                self._to_loop(msg.service, self.loop.on_diagnosis, msg)
            elif topic == names.actions:
                self.ledger.command(msg)
                result = self.runner.process(msg.model_dump_json().encode(), "in-process")
                self.runner.reported(result)
                self.queue.append((names.action_results, result))
            elif topic == names.action_results:
                self._to_loop(msg.service or "", self.loop.on_result, msg)
            elif topic == names.labels:
                self.diagnose.learn(msg)
            elif topic == names.verifications:
                self.ledger.verification(msg)
            elif topic == names.incidents:
                self.ledger.transition(msg)

    # -- the stages ------------------------------------------------------------------------
    def _detect(self, window: WindowAggregate) -> None:
        """Detection: the detector and the slimmed recent windows of the service."""
        service = window.service
        detector = self.detectors.setdefault(service, Detector(self.config.detection))
        events = detector.observe(window)
        history = self.history.setdefault(service, [])
        if not history or window.start > history[-1].start:
            slim = [s.model_copy(update={"sample": []}) for s in window.series]
            history.append(window.model_copy(update={"series": slim}))
            del history[: -self.config.windows.history_windows]
        for event in events:
            if isinstance(event, Breach):
                self.queue.append((self.names.breaches, event))

    def _diagnose(self, breach: Breach) -> None:
        diagnosis = self.diagnose.diagnose(breach, list(self.history.get(breach.service, [])))
        self.queue.append((self.names.diagnoses, diagnosis))

    def _to_loop(self, service: str, handle: Any, msg: Any) -> None:
        """The loop agent: the service's book, the pure loop, its messages, then rewards."""
        book = self.books.setdefault(service, ServiceBook(service))
        out: LoopOutput = handle(book, msg)
        names = self.names
        for topic, messages in (
            (names.verifications, out.verifications),
            (names.incidents, out.transitions),
            (names.actions, out.commands),
            (names.labels, out.labels),
        ):
            self.queue.extend((topic, m) for m in messages)
        for area, cause, remedy, success, ts in out.rewards:
            self.planner.reward(area, cause, remedy, success, ts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m perfloop.simulator.harness",
        description="Run the whole loop in one process on a simulated scenario; print what "
        "every incident took and whether remedies per incident fell as the planner learned.",
    )
    parser.add_argument("--scenario", default=str(DEFAULT_SCENARIO), help="a scenario TOML")
    parser.add_argument("--seed", type=int, default=None, help="the simulation's seed")
    args = parser.parse_args(argv)
    report = run_in_process(load_scenario(args.scenario), seed=args.seed)
    print(report.table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
