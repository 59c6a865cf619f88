"""``perfloop demo``: the whole loop on one machine, with a live timeline.

Starts the local broker if none is reachable, creates a fresh set of topics, runs the worker
and the simulator (with its executor) as child processes on a scenario with a fault in every
area, and prints each incident's timeline — breach, diagnosis with its probability and top
features, remedy, verdict, resolution or escalation — then a summary. It exits by itself when
every injected fault's incident is closed (or at ``--timeout``), and on Ctrl-C, stopping
everything it started: the children, and the broker if it started it.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from perfloop.broker.local import LocalKafka, can_list_topics
from perfloop.demo_timeline import Timeline
from perfloop.schemas.config import PerfloopConfig, TopicNames, load_config
from perfloop.schemas.topics import create_missing_topics, topic_catalog
from perfloop.simulator.scenario import BUNDLED, detection_overrides, load_scenario
from perfloop.toml_out import to_toml

SCENARIO = BUNDLED / "all-areas.toml"


def demo_config(base: PerfloopConfig, run_id: str, state: Path, scenario: Any) -> dict[str, Any]:
    """The demo's configuration: fresh topics and group, and windows suited to a sped-up
    simulation (10 s of event time is 2 s of wall time at speed 5)."""
    return {
        "broker": {"bootstrap": base.broker.bootstrap},
        "topics": {
            "names": TopicNames().with_suffix(f".demo-{run_id}").model_dump(),
            "partitions": 3,
        },
        "worker": {
            "app_id": f"perfloop-demo-{run_id}",
            "state_dir": str(state / "worker"),
            "session_timeout_s": 6.0,
            "heartbeat_interval_s": 1.0,
        },  # fmt: skip
        "executor": {
            "group": f"perfloop-demo-executor-{run_id}",
            "state_dir": str(state / "executor"),
        },  # fmt: skip
        "windows": {"length_s": 10.0, "lateness_s": 3.0},
        "detection": detection_overrides(scenario),
        "verification": {"settle_windows": 2, "post_windows": 3},
        "planner": {"cooldown_s": 0.0, "max_attempts": 6},
    }


class Children:
    """Child processes in their own process groups, stopped together."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                    stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        self.procs.append((name, proc))

    def dead(self) -> list[str]:
        return [name for name, p in self.procs if p.poll() is not None]

    def stop(self, timeout_s: float = 20.0) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for _, proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def run_demo(config_path: str | None, scenario_path: str | None, timeout_s: float) -> int:
    base = load_config(config_path)
    scenario = load_scenario(scenario_path or SCENARIO)
    broker: LocalKafka | None = None
    if not can_list_topics(base.broker.bootstrap, timeout_s=3):
        if os.environ.get("PERFLOOP_BROKER"):
            print(f"perfloop demo: no broker answers at {base.broker.bootstrap}", file=sys.stderr)
            return 2
        print("starting the local Kafka broker ...", flush=True)
        broker = LocalKafka()
        base = base.model_copy(update={"broker": base.broker.model_copy(
            update={"bootstrap": broker.up().bootstrap})})  # fmt: skip
    run_id = time.strftime("%Y%m%d-%H%M%S")
    state = Path(tempfile.mkdtemp(prefix=f"perfloop-demo-{run_id}-"))
    config = PerfloopConfig.model_validate(demo_config(base, run_id, state, scenario))
    config_file = state / "perfloop.toml"
    config_file.write_text(to_toml(config.model_dump(exclude_defaults=True)))
    create_missing_topics(config.broker.bootstrap, topic_catalog(config.topics))
    env = {**os.environ, "PERFLOOP_CONFIG": str(config_file)}
    env.setdefault("PERFLOOP_ACTION_KEY", f"demo:{secrets.token_hex(24)}")
    env.pop("PERFLOOP_BROKER", None)  # the configuration file names the broker
    children = Children()
    faults: set[tuple[str, str]] = {(f.service, str(f.area)) for f in scenario.faults}
    timeline = Timeline(config.broker.bootstrap, config.topics.names)
    print(f"perfloop demo {run_id}: {len(faults)} faults in {len(scenario.services)} services; "
          f"topics *.demo-{run_id}; logs in {state}", flush=True)  # fmt: skip
    py = [sys.executable, "-m", "perfloop.cli"]
    try:
        children.start("worker", [*py, "worker", "--loglevel", "warning"], env,
                       state / "worker.log")  # fmt: skip
        children.start("simulator", [*py, "simulate", "--scenario", str(scenario_path or SCENARIO)],
                       env, state / "simulator.log")  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            timeline.poll()
            if faults <= timeline.closed_keys():
                break
            if children.dead():
                print(f"perfloop demo: {', '.join(children.dead())} stopped; see {state}",
                      file=sys.stderr)  # fmt: skip
                break
        else:
            print(f"perfloop demo: stopping after {timeout_s:g} s", flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping", flush=True)
    finally:
        children.stop()
        timeline.close()
        if broker is not None:
            broker.down()
    timeline.summary(faults)
    return 0
