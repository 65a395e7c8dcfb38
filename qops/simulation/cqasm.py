"""Reading a cQASM circuit into a program the simulator runs.

The text is parsed by OpenSquirrel (libqasm underneath), so everything cQASM 3.0 allows and
OpenSquirrel's passes produce is accepted: any single-qubit gate (named, ``Rn``, ``U``, with
``inv``/``pow`` modifiers), any two-qubit gate (``CNOT``, ``CZ``, ``CR``, ``CRk``, ``SWAP``,
``ctrl.`` gates), ``measure``, ``reset``, ``init``, ``barrier`` and ``wait``. Each gate
becomes its unitary matrix in a Qiskit circuit, so what a decomposition pass emits needs no
gate table here.

Two compatibility rules:

- A circuit whose version line says ``1.x`` but whose body is cQASM 3.0 (as the protocol's
  own validator sends: ``version 1.0`` then ``qubit[1] q``) is read as 3.0; a real cQASM 1
  program does not parse as 3.0 and is refused, naming the version.
- A circuit without any ``measure`` has every qubit measured at its end, one bit per qubit.

Bits are numbered as in the circuit: result bitstrings read ``b[n-1]...b[0]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from opensquirrel import Circuit
from opensquirrel.circuit_matrix_calculator import get_circuit_matrix
from opensquirrel.ir.control_instruction import Barrier, Wait
from opensquirrel.ir.non_unitary import Init, Measure, Reset
from opensquirrel.ir.single_qubit_gate import SingleQubitGate
from opensquirrel.ir.statement import Statement
from opensquirrel.ir.two_qubit_gate import TwoQubitGate
from opensquirrel.reindexer import get_reindexed_circuit
from opensquirrel.utils import can1
from qiskit import QuantumCircuit
from qiskit.circuit.library import UnitaryGate

from qops.simulation.errors import CircuitError

_VERSION_1 = re.compile(r"^(\s*(?://[^\n]*\n\s*)*)version\s+1(?:\.\d+)?\b")
_PARSE_PREFIX = "parsing error: "

ComplexMatrix = NDArray[np.complex128]


@dataclass(frozen=True)
class CircuitProgram:
    """A circuit ready to simulate.

    Attributes:
        circuit: The Qiskit circuit: one unitary per gate, measurements into its bits.
        nqubits: Size of the circuit's qubit register.
        nbits: Number of result bits (the bit register, or one per qubit when the circuit
            measures nothing).
        pairs: The qubit pairs two-qubit gates act on, each as ``(low, high)``.
        gates: Number of gates.
    """

    circuit: QuantumCircuit
    nqubits: int
    nbits: int
    pairs: frozenset[tuple[int, int]]
    gates: int


def parse_circuit(
    text: str,
    max_qubits: int,
    couplings: frozenset[tuple[int, int]] | None = None,
) -> CircuitProgram:
    """Read a cQASM circuit.

    Args:
        text: The cQASM source (version 3.0; see the module docstring for 1.x headers).
        max_qubits: The chip's number of qubits: a larger qubit register is refused.
        couplings: The chip's coupled pairs, each as ``(low, high)``; a two-qubit gate on
            another pair is refused. ``None``: any pair.

    Raises:
        CircuitError: The text does not parse, or the circuit does not fit the chip.
    """
    circuit = _parse(text)
    nqubits = circuit.qubit_register_size
    if nqubits > max_qubits:
        raise CircuitError(f"uses {nqubits} qubits; the chip has {max_qubits}")
    statements = list(circuit.ir.statements)
    measured = any(isinstance(s, Measure) for s in statements)
    nbits = circuit.bit_register_size if measured else nqubits
    program = QuantumCircuit(nqubits, nbits)
    pairs: set[tuple[int, int]] = set()
    gates = 0
    for number, statement in enumerate(statements, start=1):
        where = f"statement {number} ({_name_of(statement)})"
        if isinstance(statement, SingleQubitGate):
            qubit = statement.qubit.index
            program.append(UnitaryGate(_single_matrix(statement), check_input=False), [qubit])
            gates += 1
        elif isinstance(statement, TwoQubitGate):
            a, b = statement.qubit0.index, statement.qubit1.index
            pair = (min(a, b), max(a, b))
            if couplings is not None and pair not in couplings:
                raise CircuitError(
                    f"{where} acts on q[{a}] and q[{b}], which are not coupled on the chip "
                    f"(coupled pairs: {sorted(couplings)})"
                )
            pairs.add(pair)
            program.append(UnitaryGate(_two_matrix(statement), check_input=False), [a, b])
            gates += 1
        elif isinstance(statement, Measure):
            program.measure(statement.qubit.index, statement.bit.index)
        elif isinstance(statement, Reset | Init):
            program.reset(statement.qubit.index)
        elif isinstance(statement, Barrier | Wait):
            # No timing model: the simulator runs gates back to back, so neither changes
            # the outcome (see docs/meta.md, the noise model).
            continue
        else:
            raise CircuitError(f"{where} is not supported by the simulated chip")
    if not measured:
        program.measure(range(nqubits), range(nqubits))
    return CircuitProgram(
        circuit=program, nqubits=nqubits, nbits=nbits, pairs=frozenset(pairs), gates=gates
    )


def _parse(text: str) -> Circuit:
    try:
        return _from_string(text)
    except CircuitError as e:
        if not _VERSION_1.match(text):
            raise
        as_v3 = _VERSION_1.sub(r"\1version 3.0", text, count=1)
        try:
            return _from_string(as_v3)
        except CircuitError:
            raise CircuitError(
                "cQASM 1.x is not supported (send cQASM 3.0); read as 3.0 it does not parse "
                f"either: {e.reason}"
            ) from e


def _from_string(text: str) -> Circuit:
    try:
        return Circuit.from_string(text)
    except OSError as e:
        # libqasm reports syntax and semantic errors as OSError("parsing error: ...").
        reason = str(e).removeprefix(_PARSE_PREFIX)
        raise CircuitError(f"does not parse: {reason}") from e
    except (ValueError, TypeError, KeyError, IndexError) as e:
        # OpenSquirrel's IR refuses some parsed statements itself (e.g. CNOT q[0], q[0]).
        raise CircuitError(f"is not valid: {e}") from e


def _name_of(statement: Statement) -> str:
    return str(getattr(statement, "name", type(statement).__name__))


def _single_matrix(gate: SingleQubitGate) -> ComplexMatrix:
    bsr = gate.bsr
    return np.asarray(can1(bsr.axis, bsr.angle, bsr.phase), dtype=np.complex128)


def _two_matrix(gate: TwoQubitGate) -> ComplexMatrix:
    """The gate's 4x4 unitary with ``qubit0`` as the low bit, Qiskit's order for ``[a, b]``."""
    qubits = [gate.qubit0.index, gate.qubit1.index]
    return np.asarray(get_circuit_matrix(get_reindexed_circuit([gate], qubits)))
