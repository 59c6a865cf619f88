"""The executor handler ``simulator``: applies verified commands to a running simulation.

>>> from perfloop.actions.handlers import Handler, _example_command
>>> from perfloop.simulator.scenario import Scenario
>>> from perfloop.simulator.simulation import Simulation
>>> handler = SimulatorHandler(Simulation(Scenario()))
>>> isinstance(handler, Handler), handler.name
(True, 'simulator')
>>> handler.apply(_example_command())
'api memory/cache/reduce_ttl: no active memory fault, nothing changed'
"""

from __future__ import annotations

from collections.abc import Callable

from perfloop.schemas.messages import ActionCommand
from perfloop.simulator.simulation import Outcome, Simulation


class SimulatorHandler:
    """Hands each command to ``simulation``; ``on_apply`` (if given) sees every outcome."""

    name = "simulator"

    def __init__(
        self, simulation: Simulation, on_apply: Callable[[Outcome], None] | None = None
    ) -> None:
        self.simulation = simulation
        self.on_apply = on_apply

    def apply(self, command: ActionCommand) -> str:
        outcome = self.simulation.apply_outcome(command)
        if self.on_apply is not None:
            self.on_apply(outcome)
        return outcome.detail
