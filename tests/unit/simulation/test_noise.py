"""The chip's noise from calibration values, seen in the counts (statistical bounds)."""

from __future__ import annotations

import pytest

from qops.simulation.cqasm import parse_circuit
from qops.simulation.errors import NoiseParameterError
from qops.simulation.noise import ChipNoise, QubitNoise, noise_model
from qops.simulation.simulator import CircuitSimulator

X_MEASURE = "version 3.0\nqubit[1] q\nbit[1] b\nX q[0]\nb[0] = measure q[0]"
SHOTS = 4000


def zeros(noise: ChipNoise, text: str = X_MEASURE, seed: int = 7) -> int:
    program = parse_circuit(text, 5)
    return CircuitSimulator(seed=seed).run(program, SHOTS, noise).counts.get("0", 0)


def within_six_sigma(observed: int, p: float, n: int = SHOTS) -> bool:
    sigma = (n * p * (1 - p)) ** 0.5
    return abs(observed - n * p) <= 6 * sigma


def test_noise_readout_fidelity_0_9_gives_about_ten_percent_zeros() -> None:
    observed = zeros(ChipNoise(qubits={0: QubitNoise(readout_fidelity=0.9)}))
    assert within_six_sigma(observed, 0.1), observed


def test_noise_ideal_chip_gives_no_errors() -> None:
    assert zeros(ChipNoise()) == 0
    assert noise_model(ChipNoise()) is None


def test_noise_t1_decays_the_excited_state_over_the_gate() -> None:
    # T1 equal to the gate's duration: the excited state survives with exp(-1).
    noise = ChipNoise(qubits={0: QubitNoise(t1=40e-9)}, single_qubit_gate_s=40e-9)
    assert within_six_sigma(zeros(noise), 1 - 0.36788)


def test_noise_t2_dephases_a_superposition() -> None:
    # H, then dephasing over the gate, then H: ideal gives "0" always; with T2 = the gate
    # duration the coherence falls to exp(-1) and "1" appears with (1 - e^-1) / 2.
    text = "version 3.0\nqubit[1] q\nbit[1] b\nH q[0]\nH q[0]\nb[0] = measure q[0]"
    noise = ChipNoise(qubits={0: QubitNoise(t2=1e-9, t1=1.0)}, single_qubit_gate_s=40e-9)
    ones = SHOTS - zeros(noise, text)
    assert ones > SHOTS * 0.4  # two gates of 40 T2 each: fully dephased, about one half


def test_noise_pair_fidelity_depolarises_two_qubit_gates() -> None:
    text = "version 3.0\nqubit[2] q\nbit[2] b\nCNOT q[0], q[1]\nb = measure q"
    noise = ChipNoise(pair_fidelities={(0, 1): 0.85})
    program = parse_circuit(text, 5)
    result = CircuitSimulator(seed=5).run(program, SHOTS, noise).counts
    # lambda = 4 (1 - F) / 3 = 0.2; the fully mixed part leaves |00> with 3/4 of it.
    assert within_six_sigma(SHOTS - result.get("00", 0), 0.2 * 3 / 4)


@pytest.mark.parametrize(
    ("noise", "message"),
    [
        (ChipNoise(qubits={0: QubitNoise(readout_fidelity=1.2)}), "readout_fidelity of qubit 0"),
        (ChipNoise(qubits={1: QubitNoise(t1=-1.0)}), "t1 of qubit 1 is -1.0"),
        (ChipNoise(pair_fidelities={(0, 1): -0.1}), "fidelity of q0-q1"),
    ],
)
def test_noise_impossible_value_is_refused_naming_it(noise: ChipNoise, message: str) -> None:
    with pytest.raises(NoiseParameterError, match=message):
        noise_model(noise)


def test_simulator_raw_data_is_each_shot_and_sums_to_the_counts() -> None:
    noise = ChipNoise(qubits={0: QubitNoise(readout_fidelity=0.8)})
    program = parse_circuit(X_MEASURE, 5)
    result = CircuitSimulator(seed=2).run(program, 500, noise, raw_data=True)
    assert result.raw_data is not None
    assert len(result.raw_data) == 500
    assert {s: result.raw_data.count(s) for s in set(result.raw_data)} == result.counts


def test_simulator_same_seed_repeats_runs() -> None:
    noise = ChipNoise(qubits={0: QubitNoise(readout_fidelity=0.7)})
    assert zeros(noise, seed=11) == zeros(noise, seed=11)
