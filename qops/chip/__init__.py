"""Simulated transmon chip: the QCoDeS instrument, its signal physics, and the fits.

- :mod:`qops.chip.instrument`: the QCoDeS instrument simulating the chip.
- :mod:`qops.chip.physics`: the Bloch-vector signal models.
- :mod:`qops.chip.fitting`: fits of measured traces, with their errors.

Measuring the chip step by step (the calibration) is :mod:`qops.calibration`.
"""

from qops.chip.errors import ChipError, TopologyError, UnknownPairError, UnknownQubitError
from qops.chip.instrument import (
    SimulatedChip,
    SimulatedPair,
    SimulatedQubit,
    drift_epoch,
    pair_id,
    qubit_id,
)
from qops.chip.models import PairTruth, QubitTruth

__all__ = [
    "ChipError",
    "PairTruth",
    "QubitTruth",
    "SimulatedChip",
    "SimulatedPair",
    "SimulatedQubit",
    "TopologyError",
    "UnknownPairError",
    "UnknownQubitError",
    "drift_epoch",
    "pair_id",
    "qubit_id",
]
