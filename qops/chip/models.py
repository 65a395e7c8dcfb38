"""The hidden true values of the simulated chip.

The simulation draws its signals from them; they are exposed only so tests and demos can
compare a calibration with what it should have found.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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
