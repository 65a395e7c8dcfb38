"""Reading cQASM into a program: what parses, what the chip refuses, and how bits are laid out."""

from __future__ import annotations

import pytest
from opensquirrel import Circuit
from opensquirrel.passes.decomposer import McKayDecomposer

from qops.simulation.cqasm import parse_circuit
from qops.simulation.errors import CircuitError
from qops.simulation.noise import ChipNoise
from qops.simulation.simulator import CircuitSimulator

VALIDATOR_CIRCUIT = "version 1.0\nqubit[1] q\nbit[1] b\nX q[0]\nb[0] = measure q[0]"
"""The circuit the protocol's control-software validator sends (a 1.0 header, a 3.0 body)."""


def counts(text: str, shots: int = 16, max_qubits: int = 5) -> dict[str, int]:
    program = parse_circuit(text, max_qubits)
    return CircuitSimulator(seed=1).run(program, shots, ChipNoise()).counts


def test_parse_circuit_validator_circuit_with_version_1_header_runs_as_3() -> None:
    assert counts(VALIDATOR_CIRCUIT) == {"1": 16}


def test_parse_circuit_real_cqasm_1_is_refused_naming_the_version() -> None:
    with pytest.raises(CircuitError, match=r"cQASM 1\.x is not supported"):
        parse_circuit("version 1.0\nqubits 2\nx q[0]\nmeasure q[0]", 5)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "does not parse"),
        ("version 3.0\nqubit[2] q\nfoo q[0]", "couldn't find instruction 'foo'"),
        ("version 3.0\nqubit[2] q\nX q[5]", "index 5 out of range"),
        ("version 3.0\nqubit[2] q\nCNOT q[0], q[0]", "cannot be the same"),
        ("version 3.0\nqubit[6] q\nX q[0]", "uses 6 qubits; the chip has 5"),
    ],
)
def test_parse_circuit_bad_circuit_is_refused_saying_why(text: str, reason: str) -> None:
    with pytest.raises(CircuitError, match=reason):
        parse_circuit(text, 5)


def test_parse_circuit_gate_on_uncoupled_pair_is_refused_naming_qubits() -> None:
    text = "version 3.0\nqubit[3] q\nCNOT q[0], q[2]"
    with pytest.raises(CircuitError, match=r"q\[0\] and q\[2\], which are not coupled"):
        parse_circuit(text, 3, couplings=frozenset({(0, 1), (1, 2)}))
    assert parse_circuit(text, 3).pairs == frozenset({(0, 2)})


def test_parse_circuit_bitstrings_are_little_endian() -> None:
    # b[0] is the rightmost character: q[0] flipped, q[1] not, q[2] flipped -> "101" over
    # three bits; measuring q[1] (a copy of q[0]) into b[2] alone gives "100".
    assert counts("version 3.0\nqubit[3] q\nbit[3] b\nX q[0]\nX q[2]\nb = measure q") == {"101": 16}
    text = "version 3.0\nqubit[3] q\nbit[3] b\nX q[0]\nCNOT q[0], q[1]\nb[2] = measure q[1]"
    assert counts(text) == {"100": 16}


def test_parse_circuit_without_measure_measures_every_qubit_at_the_end() -> None:
    program = parse_circuit("version 3.0\nqubit[2] q\nX q[1]", 5)
    assert program.nbits == 2
    assert counts("version 3.0\nqubit[2] q\nX q[1]") == {"10": 16}


def test_parse_circuit_mckay_output_and_modifiers_give_the_same_state() -> None:
    # What the McKay decomposition emits for H (Rz, X90, Rz), gate modifiers, two-qubit
    # gates of every semantic, reset, barrier and wait all run.
    text = (
        "version 3.0\nqubit[3] q\nbit[3] b\n"
        "Rz(1.5707963) q[0]\nX90 q[0]\nRz(1.5707963) q[0]\n"
        "inv.S q[1]\npow(2).S q[1]\nbarrier q\nwait(2) q[0]\n"
        "CZ q[0], q[1]\nSWAP q[1], q[2]\nCRk(2) q[0], q[1]\nctrl.X q[0], q[1]\n"
        "reset q[2]\nH q[0]\nb = measure q"
    )
    program = parse_circuit(text, 5)
    assert program.gates == 10
    result = CircuitSimulator(seed=3).run(program, 400, ChipNoise()).counts
    assert set(result) <= {"000", "001", "010", "011"}
    assert sum(result.values()) == 400


def test_parse_circuit_accepts_what_the_2200s_compiler_passes_emit() -> None:
    # get_static's default_compiler_config (the McKay decomposition), applied with
    # OpenSquirrel as the 2200 does, then sent as text: the same outcomes as the original.
    source = (
        "version 3.0\nqubit[3] q\nbit[3] b\nH q[0]\nCNOT q[0], q[1]\nCNOT q[1], q[2]\n"
        "Y q[2]\nb = measure q"
    )
    compiled = Circuit.from_string(source)
    compiled.decompose(decomposer=McKayDecomposer())
    assert "X90" in str(compiled)
    assert (
        set(counts(str(compiled), shots=200))
        == set(counts(source, shots=200))
        == {
            "100",
            "011",
        }
    )
