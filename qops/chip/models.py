"""Typed values of the simulated chip and of calibration results.

The truth models hold the hidden values the simulation draws its signals from; they are
exposed only so tests and demos can compare a calibration with what it should have found.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from qops.chip.steps import StepName


class QubitTruth(BaseModel):
    """Hidden true values of one qubit at the chip's current drift epoch.

    Attributes:
        qubit_frequency: Transition frequency in Hz.
        readout_frequency: Readout resonator frequency in Hz.
        pi_amplitude: Drive amplitude in V of a π pulse of the chip's pulse duration.
        t1: Energy relaxation time in s.
        t2_star: Ramsey (free-induction) dephasing time in s.
        t2_echo: Hahn-echo dephasing time in s.
        readout_fidelity: Assignment fidelity of single-shot readout, in [0.5, 1].
    """

    model_config = ConfigDict(frozen=True)

    qubit_frequency: float = Field(gt=0)
    readout_frequency: float = Field(gt=0)
    pi_amplitude: float = Field(gt=0)
    t1: float = Field(gt=0)
    t2_star: float = Field(gt=0)
    t2_echo: float = Field(gt=0)
    readout_fidelity: float = Field(ge=0.5, le=1)


class PairTruth(BaseModel):
    """Hidden true value of one coupled pair.

    Attributes:
        cz_fidelity: Average gate fidelity of the CZ gate, in [0, 1].
    """

    model_config = ConfigDict(frozen=True)

    cz_fidelity: float = Field(ge=0, le=1)


class FittedValue(BaseModel):
    """A value obtained from a fit, with its unit and 1-sigma error.

    Attributes:
        value: The fitted value.
        unit: Its unit (``1`` for dimensionless).
        error: One standard deviation, from the fit's covariance matrix.
    """

    model_config = ConfigDict(frozen=True)

    value: float
    unit: str
    error: float = Field(ge=0)


class MeasurementResult(BaseModel):
    """What one calibration measurement found, and where its data is.

    Attributes:
        step: The calibration step.
        target: The qubit id (``Q0``) or the pair id (``Q0-Q1``).
        inputs: The input values the measurement used, by input key.
        outputs: The calibrated parameters, by parameter name (see
            :data:`qops.chip.steps.PARAMETER_UNITS`).
        diagnostics: Further fitted quantities that are not calibrated parameters (e.g.
            Rabi contrast, Ramsey fringe frequency), by name.
        run_id: The QCoDeS run id in ``db_path``.
        guid: The QCoDeS run's GUID.
        db_path: The QCoDeS database the run was written to.
        experiment_name: The QCoDeS experiment the run belongs to.
        measured_at: When the measurement finished (UTC).
    """

    model_config = ConfigDict(frozen=True)

    step: StepName
    target: str
    inputs: dict[str, float]
    outputs: dict[str, FittedValue]
    diagnostics: dict[str, FittedValue] = Field(default_factory=dict)
    run_id: int
    guid: str
    db_path: Path
    experiment_name: str
    measured_at: datetime
