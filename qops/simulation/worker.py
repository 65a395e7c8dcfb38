"""Simulating in a separate process, so the caller's threads keep running.

Qiskit Aer holds the GIL while it simulates: in-process, a circuit simulated shot by shot
(mid-circuit measurements, seconds for many shots) would stop every other thread of the
2300 server, its heartbeat included, and a crash of the C++ simulator would take the
server down with it. :class:`SimulationWorker` runs each simulation in one child process
(started with ``spawn``, never forked from a threaded server) that keeps its simulator, and
its noise-model cache, from job to job. Programs, noise and results cross as pickles.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool

from qops.simulation.cqasm import CircuitProgram
from qops.simulation.noise import ChipNoise
from qops.simulation.simulator import CircuitSimulator, ShotResults

logger = logging.getLogger(__name__)

POLL_S = 0.1
"""How often a waiting caller's ``while_waiting`` is called."""

_simulator: CircuitSimulator | None = None
"""The child process's simulator (set in the child only)."""


class SimulatorCrashedError(RuntimeError):
    """The simulation process died while running a circuit."""


def _run_in_child(
    program: CircuitProgram, shots: int, noise: ChipNoise, raw_data: bool, seed: int
) -> ShotResults:
    global _simulator
    if _simulator is None:
        _simulator = CircuitSimulator()
    return _simulator.run(program, shots, noise, raw_data=raw_data, seed=seed)


def _warm_up() -> None:
    """Import the simulator in the child before the first job needs it."""
    global _simulator
    if _simulator is None:
        _simulator = CircuitSimulator()


class SimulationWorker:
    """One child process that runs simulations, started on first use.

    Args:
        seed: Seed of the generator the runs' seeds are drawn from; ``None``: from the OS.
    """

    def __init__(self, seed: int | None = None) -> None:
        self._seeds = CircuitSimulator.seed_generator(seed)
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    def start(self) -> None:
        """Start the child and load the simulator in it, without waiting for either."""
        self._executor().submit(_warm_up)

    def run(
        self,
        program: CircuitProgram,
        shots: int,
        noise: ChipNoise,
        raw_data: bool = False,
        while_waiting: Callable[[], None] | None = None,
    ) -> ShotResults:
        """Run ``program`` in the child; call ``while_waiting`` every :data:`POLL_S` meanwhile.

        Raises:
            ValueError: As :meth:`CircuitSimulator.run`.
            NoiseParameterError: As :meth:`CircuitSimulator.run`.
            SimulatorCrashedError: The child died (a new one is started for the next run).
        """
        seed = int(self._seeds.integers(2**31 - 1))
        try:
            future = self._executor().submit(_run_in_child, program, shots, noise, raw_data, seed)
            while True:
                try:
                    return future.result(timeout=POLL_S)
                except concurrent.futures.TimeoutError:
                    if while_waiting is not None:
                        while_waiting()
        except BrokenProcessPool as e:
            logger.error("the simulation process died; starting a new one for the next job")
            self.close()
            raise SimulatorCrashedError("the simulation process died running the circuit") from e

    def close(self) -> None:
        """Stop the child (waits for a running simulation)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
