"""Small calibration tasks and a flow chaining them: frequency -> rabi -> t1 (two inputs)."""

from __future__ import annotations

import math

from prefect import flow

from qops.calibration.recording import CalibrationOutcome, InputValues
from qops.provenance.models import Measured
from tasks.provenance import calibration_task


@calibration_task(outputs=["qubit_frequency"], retries=0)
def check_frequency(
    qid: str, frequency_hz: float, chip_id: str | None = None
) -> dict[str, Measured]:
    """A: measures the qubit frequency."""
    return {"qubit_frequency": Measured(value=frequency_hz, unit="Hz", error=1e3)}


@calibration_task(outputs=["rabi_amplitude"], inputs=["qubit_frequency"], retries=0)
def check_rabi(qid: str, inputs: InputValues) -> dict[str, Measured]:
    """B: uses the frequency."""
    frequency = inputs["qubit_frequency"].value
    assert isinstance(frequency, float)
    return {"rabi_amplitude": Measured(value=frequency / 1e10, unit="V")}


@calibration_task(
    outputs=["t1", "t1_fit_quality"], inputs=["qubit_frequency", "rabi_amplitude"], retries=0
)
def check_t1(
    qid: str, inputs: InputValues, broken_fit: bool = False
) -> dict[str, Measured | float]:
    """C: two inputs, two outputs; a broken fit gives NaN."""
    amplitude = inputs["rabi_amplitude"].value
    assert isinstance(amplitude, float)
    t1 = math.nan if broken_fit else amplitude * 1e-4
    return {"t1": Measured(value=t1, unit="s", error=math.inf), "t1_fit_quality": 0.9}


@calibration_task(outputs=["readout_fidelity"], retries=0)
def failing_readout(qid: str) -> dict[str, float]:
    """Always fails."""
    raise RuntimeError("readout resonator not found")


@flow(name="calibration-chain")
def calibration_chain(
    qid: str = "Q0", frequency_hz: float = 5.0e9, broken_fit: bool = False
) -> dict[str, CalibrationOutcome]:
    """A -> B -> C for one qubit."""
    a = check_frequency(qid, frequency_hz)
    b = check_rabi(qid)
    c = check_t1(qid, broken_fit=broken_fit)
    return {"frequency": a, "rabi": b, "t1": c}


@calibration_task(outputs=["resonator_frequency"], retries=0)
def check_resonator(
    qid: str, execution_id: str | None = None, project_id: str | None = None
) -> dict[str, Measured]:
    """Takes its execution and project from arguments when given."""
    return {"resonator_frequency": Measured(value=7.1e9, unit="Hz")}
