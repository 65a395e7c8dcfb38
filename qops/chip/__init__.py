"""Simulated transmon chip, its calibration measurements through QCoDeS, and their fits.

- :mod:`qops.chip.steps`: the calibration dependency graph as data.
- :mod:`qops.chip.instrument`: the QCoDeS instrument simulating the chip.
- :mod:`qops.chip.measurements`: one function per calibration step.
- :mod:`qops.chip.fitting`, :mod:`qops.chip.physics`: fits and signal models.
"""

from qops.chip.errors import (
    ChipError,
    FitError,
    InvalidInputError,
    MeasurementDatabaseError,
    MetadataInstrumentError,
    MissingInputError,
    TopologyError,
    UnknownPairError,
    UnknownQubitError,
)
from qops.chip.instrument import (
    SimulatedChip,
    SimulatedPair,
    SimulatedQubit,
    drift_epoch,
    pair_id,
    qubit_id,
)
from qops.chip.measurements import (
    METADATA_INSTRUMENT_NAME,
    STEP_FUNCTIONS,
    MeasurementContext,
    StepFunction,
    TagInstrument,
    check_cz,
    check_frequency,
    check_rabi,
    check_ramsey,
    check_readout_fidelity,
    check_t1,
    check_t2_echo,
    run_step,
)
from qops.chip.models import FittedValue, MeasurementResult, PairTruth, QubitTruth
from qops.chip.settings import (
    BenchmarkingSettings,
    DecaySettings,
    FrequencySettings,
    RabiSettings,
    RamseySettings,
    ReadoutSettings,
)
from qops.chip.steps import (
    CALIBRATION_STEPS,
    PARAMETER_UNITS,
    Scope,
    StepName,
    StepSpec,
    input_key,
    producers,
    required_inputs,
)

__all__ = [
    "CALIBRATION_STEPS",
    "METADATA_INSTRUMENT_NAME",
    "PARAMETER_UNITS",
    "STEP_FUNCTIONS",
    "BenchmarkingSettings",
    "ChipError",
    "DecaySettings",
    "FitError",
    "FittedValue",
    "FrequencySettings",
    "InvalidInputError",
    "MeasurementContext",
    "MeasurementDatabaseError",
    "MeasurementResult",
    "MetadataInstrumentError",
    "MissingInputError",
    "PairTruth",
    "QubitTruth",
    "RabiSettings",
    "RamseySettings",
    "ReadoutSettings",
    "Scope",
    "SimulatedChip",
    "SimulatedPair",
    "SimulatedQubit",
    "StepFunction",
    "StepName",
    "StepSpec",
    "TagInstrument",
    "TopologyError",
    "UnknownPairError",
    "UnknownQubitError",
    "check_cz",
    "check_frequency",
    "check_rabi",
    "check_ramsey",
    "check_readout_fidelity",
    "check_t1",
    "check_t2_echo",
    "drift_epoch",
    "input_key",
    "pair_id",
    "producers",
    "qubit_id",
    "required_inputs",
    "run_step",
]
