"""The noise of the simulated chip, from its calibration values.

Per qubit, from T1, T2 and the readout fidelity; per coupled pair, from the two-qubit gate
fidelity. A value that is missing turns its part of the noise off (that qubit or pair is
ideal in that respect), so a chip without calibration runs noiselessly.

- every single-qubit gate is followed by thermal relaxation over the gate's duration
  (amplitude damping with T1, dephasing with T2; a fitted T2 above 2 T1, which physics
  forbids, is taken as 2 T1);
- every two-qubit gate is followed by two-qubit depolarisation whose average gate fidelity is
  the pair's fidelity (``λ = 4 (1 − F) / 3``); its decoherence is part of that fidelity, so
  no thermal relaxation is added on top;
- every measurement flips its bit with probability ``1 − F_readout`` (symmetric assignment
  error, as the chip's single-shot readout is modelled).

Idle qubits do not decohere: the simulation has no schedule (see docs/meta.md).
"""

from __future__ import annotations

import logging
import math

from pydantic import BaseModel, ConfigDict, Field
from qiskit_aer.noise import (
    NoiseModel,
    QuantumError,
    ReadoutError,
    depolarizing_error,
    thermal_relaxation_error,
)

from qops.simulation.errors import NoiseParameterError

logger = logging.getLogger(__name__)

SINGLE_QUBIT_GATE_S = 40e-9
"""Duration of a single-qubit gate (the simulated chip's drive pulse), in s."""

GATE_INSTRUCTION = "unitary"
"""The name of every gate in a program (each is a Qiskit ``UnitaryGate``)."""


class QubitNoise(BaseModel):
    """The calibration values of one qubit that set its noise; ``None``: no such noise."""

    model_config = ConfigDict(frozen=True)

    t1: float | None = Field(default=None, description="Energy relaxation time, s.")
    t2: float | None = Field(default=None, description="Dephasing time (T2*), s.")
    readout_fidelity: float | None = Field(
        default=None, description="Assignment fidelity of single-shot readout, in [0.5, 1]."
    )


class ChipNoise(BaseModel):
    """The noise of a chip at one calibration.

    Attributes:
        qubits: Per qubit index.
        pair_fidelities: Average two-qubit gate fidelity per coupled pair ``(low, high)``.
        single_qubit_gate_s: How long a single-qubit gate lasts, s.
        version: The calibration version the values belong to, for the record.
    """

    model_config = ConfigDict(frozen=True)

    qubits: dict[int, QubitNoise] = Field(default_factory=dict)
    pair_fidelities: dict[tuple[int, int], float] = Field(default_factory=dict)
    single_qubit_gate_s: float = Field(default=SINGLE_QUBIT_GATE_S, gt=0)
    version: str = ""

    @property
    def is_ideal(self) -> bool:
        """Whether no value sets any noise."""
        return not self.pair_fidelities and all(
            q.t1 is None and q.t2 is None and q.readout_fidelity is None
            for q in self.qubits.values()
        )


def noise_model(noise: ChipNoise) -> NoiseModel | None:
    """Build the Qiskit Aer noise model of ``noise``; ``None`` if it is ideal.

    Raises:
        NoiseParameterError: A value cannot describe noise (non-positive time, fidelity
            outside [0, 1]).
    """
    if noise.is_ideal:
        return None
    model = NoiseModel(basis_gates=[GATE_INSTRUCTION])
    for index, qubit in sorted(noise.qubits.items()):
        relaxation = _relaxation(index, qubit, noise.single_qubit_gate_s)
        if relaxation is not None:
            model.add_quantum_error(relaxation, [GATE_INSTRUCTION], [index])
        if qubit.readout_fidelity is not None:
            error = 1 - _fidelity(f"readout_fidelity of qubit {index}", qubit.readout_fidelity)
            model.add_readout_error(ReadoutError([[1 - error, error], [error, 1 - error]]), [index])
    for (a, b), fidelity in sorted(noise.pair_fidelities.items()):
        strength = 4 * (1 - _fidelity(f"two-qubit gate fidelity of q{a}-q{b}", fidelity)) / 3
        if strength <= 0:
            continue
        # λ above 1 (F < 1/4) is no longer a depolarising channel; 16/15 is the largest
        # completely positive one: the pair is then fully scrambled.
        channel = depolarizing_error(min(strength, 16 / 15), 2)
        for qubits in ((a, b), (b, a)):
            model.add_quantum_error(channel, [GATE_INSTRUCTION], list(qubits))
    return model


def _relaxation(index: int, qubit: QubitNoise, duration: float) -> QuantumError | None:
    """Thermal relaxation of one gate's duration; ``None`` without T1 and T2."""
    if qubit.t1 is None and qubit.t2 is None:
        return None
    t1 = _time(f"t1 of qubit {index}", qubit.t1) if qubit.t1 is not None else math.inf
    t2 = _time(f"t2 of qubit {index}", qubit.t2) if qubit.t2 is not None else 2 * t1
    if t2 > 2 * t1:
        logger.info("t2 of qubit %d (%g s) above 2 t1 (%g s): using 2 t1", index, t2, 2 * t1)
        t2 = 2 * t1
    return thermal_relaxation_error(t1, t2, duration)


def _time(what: str, value: float) -> float:
    if not (value > 0 and math.isfinite(value)):
        raise NoiseParameterError(what, value, "a positive number of seconds")
    return value


def _fidelity(what: str, value: float) -> float:
    if not (0 <= value <= 1):
        raise NoiseParameterError(what, value, "a fidelity in [0, 1]")
    return value
