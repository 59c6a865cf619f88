"""Simulated services for demos and tests: every metric of the vocabulary, injected faults
from scenario files, and an executor handler through which remedies act on them.

- :mod:`~perfloop.simulator.scenario`: the TOML scenario format;
- :mod:`~perfloop.simulator.services`: how one service's metrics are generated;
- :mod:`~perfloop.simulator.faults`: an injected fault's life;
- :mod:`~perfloop.simulator.efficacy`: how well each remedy fixes its cause;
- :mod:`~perfloop.simulator.simulation`: :class:`Simulation`, ``tick`` and ``apply``;
- :mod:`~perfloop.simulator.handler`: the executor handler ``simulator``;
- :mod:`~perfloop.simulator.runner`: ``perfloop simulate`` and :func:`run` (Kafka).
"""

from perfloop.simulator.efficacy import Efficacy, best_remedy, efficacy, efficacy_table
from perfloop.simulator.faults import FaultView
from perfloop.simulator.handler import SimulatorHandler
from perfloop.simulator.runner import run
from perfloop.simulator.scenario import (
    FaultSpec,
    Scenario,
    ServiceSpec,
    SimulationSpec,
    detection_overrides,
    detection_toml,
    load_scenario,
)
from perfloop.simulator.services import metrics
from perfloop.simulator.simulation import Outcome, Simulation

__all__ = [
    "efficacy_table",
    "metrics",
    "Efficacy",
    "FaultSpec",
    "FaultView",
    "Outcome",
    "Scenario",
    "ServiceSpec",
    "SimulationSpec",
    "Simulation",
    "SimulatorHandler",
    "best_remedy",
    "detection_overrides",
    "detection_toml",
    "efficacy",
    "load_scenario",
    "run",
]
