"""The chip's noise from the calibration values get_dynamic serves."""

from __future__ import annotations

from qops.backend.jobs import chip_noise
from qops.backend.sources import CalibrationValue
from qops.simulation.noise import QubitNoise


def value(name: str, qid: str, number: float | None) -> CalibrationValue:
    return CalibrationValue(parameter_name=name, qid=qid, value=number)


def test_chip_noise_takes_each_qubits_and_pairs_values() -> None:
    noise = chip_noise(
        [
            value("t1", "Q0", 30e-6),
            value("t2_echo", "Q0", 40e-6),
            value("t2_star", "Q0", 20e-6),  # preferred: circuits have no echo pulses
            value("readout_fidelity", "Q0", 0.95),
            value("t2_echo", "Q1", 35e-6),
            value("qubit_frequency", "Q1", 5e9),  # not noise
            value("readout_fidelity", "Q2", None),  # no value: no noise
            value("cnot_fidelity", "Q1-Q0", 0.97),  # pair order does not matter
            value("cz_fidelity", "Q2-Q1", 0.99),
            value("cnot_fidelity", "Q2-Q1", 0.5),  # cz_fidelity preferred
        ],
        version="v7",
    )
    assert noise.qubits == {
        0: QubitNoise(t1=30e-6, t2=20e-6, readout_fidelity=0.95),
        1: QubitNoise(t2=35e-6),
    }
    assert noise.pair_fidelities == {(0, 1): 0.97, (1, 2): 0.99}
    assert noise.version == "v7"


def test_chip_noise_without_values_is_ideal() -> None:
    assert chip_noise([]).is_ideal
    assert chip_noise([value("qubit_frequency", "Q0", 5e9)]).is_ideal
