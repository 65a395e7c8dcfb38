"""Simulating a program with the chip's noise: counts and per-shot bitstrings.

Qiskit Aer's density-matrix method: exact noise channels, and when all measurements are at
the end the shots are sampled from one final state, so 1 000 shots cost little more than
one. Each run draws its own seed from the simulator's generator: runs differ from each other,
and a simulator built with a seed repeats its sequence of runs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from qiskit_aer import AerSimulator

from qops.simulation.cqasm import CircuitProgram
from qops.simulation.noise import ChipNoise, noise_model

MAX_DENSITY_MATRIX_QUBITS = 12
"""Above this a density matrix (4^n complex numbers) no longer fits a quick answer."""


@dataclass(frozen=True)
class ShotResults:
    """What a run measured.

    Attributes:
        counts: Occurrences per bitstring ``b[n-1]...b[0]`` (little endian), only those seen.
        raw_data: The bitstring of every shot in shot order; ``None`` unless asked for.
    """

    counts: dict[str, int]
    raw_data: list[str] | None


class CircuitSimulator:
    """Runs programs on the simulated chip with its noise.

    Args:
        seed: Seed of the generator the runs' seeds are drawn from; ``None``: from the OS.
    """

    def __init__(self, seed: int | None = None) -> None:
        # One thread: at 5 qubits parallel kernels do not pay, and OpenMP threads spinning
        # against the server on 2 cores made a run 4x slower under load (docs/benchmarks.md).
        self._backend = AerSimulator(method="density_matrix", max_parallel_threads=1)
        self._rng = self.seed_generator(seed)
        self._lock = threading.Lock()
        self._noise_cache: tuple[ChipNoise, object] | None = None

    def run(
        self,
        program: CircuitProgram,
        shots: int,
        noise: ChipNoise,
        raw_data: bool = False,
        seed: int | None = None,
    ) -> ShotResults:
        """Run ``program`` for ``shots`` shots.

        ``seed`` seeds this run alone; by default it is drawn from the simulator's generator.

        Raises:
            ValueError: ``shots`` is not positive, or the program is too large to simulate.
            NoiseParameterError: A calibration value cannot describe noise.
        """
        if shots < 1:
            raise ValueError(f"shots must be at least 1, got {shots}")
        if program.nqubits > MAX_DENSITY_MATRIX_QUBITS:
            raise ValueError(
                f"{program.nqubits} qubits exceed the {MAX_DENSITY_MATRIX_QUBITS} a "
                "density-matrix simulation runs"
            )
        with self._lock:
            model = self._model_of(noise)
            if seed is None:
                seed = self.next_seed()
            options: dict[str, object] = {"shots": shots, "seed_simulator": seed}
            if model is not None:
                options["noise_model"] = model
            if raw_data:
                options["memory"] = True
            result = self._backend.run(program.circuit, **options).result()
        counts = {str(k): int(v) for k, v in result.get_counts().items()}
        memory = [str(shot) for shot in result.get_memory()] if raw_data else None
        return ShotResults(counts=counts, raw_data=memory)

    @staticmethod
    def seed_generator(seed: int | None) -> np.random.Generator:
        """The generator runs' seeds are drawn from (``None``: seeded from the OS)."""
        return np.random.default_rng(seed)

    def next_seed(self) -> int:
        """Draw the seed of a run from the simulator's generator."""
        return int(self._rng.integers(2**31 - 1))

    def _model_of(self, noise: ChipNoise) -> object:
        """The noise model of ``noise``, rebuilt only when the values changed."""
        cached = self._noise_cache
        if cached is not None and cached[0] == noise:
            return cached[1]
        model = noise_model(noise)
        self._noise_cache = (noise, model)
        return model
