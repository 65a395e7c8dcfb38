"""Errors of the simulated chip: its construction and its qubit and pair look-ups.

Each failure has its own :class:`~qops.errors.QopsError` subclass built from structured
fields; the message names the chip and what was asked of it. The errors of measuring the
chip (inputs, fits, the QCoDeS database) are in :mod:`qops.calibration.errors`.
"""

from __future__ import annotations

from collections.abc import Sequence

from qops.errors import QopsError


class ChipError(QopsError):
    """Root of the errors raised by :mod:`qops.chip`."""


class TopologyError(ChipError):
    """A chip cannot be built with the given size and coupling map.

    Args:
        n_qubits: The requested number of qubits.
        topology: The requested coupled pairs.
        reason: What is wrong with them.
    """

    def __init__(self, n_qubits: int, topology: Sequence[Sequence[int]], reason: str) -> None:
        self.n_qubits = n_qubits
        self.topology = [list(pair) for pair in topology]
        self.reason = reason
        super().__init__(f"chip of {n_qubits} qubits with topology {self.topology}: {reason}")


class UnknownQubitError(ChipError):
    """A qubit id that is not on the chip.

    Args:
        chip: Name of the chip.
        qid: The requested qubit id.
        known: The qubit ids the chip has.
    """

    def __init__(self, chip: str, qid: str, known: Sequence[str]) -> None:
        self.chip = chip
        self.qid = qid
        self.known = list(known)
        super().__init__(f"qubit {qid!r} is not on chip {chip!r} (qubits: {', '.join(self.known)})")


class UnknownPairError(ChipError):
    """A pair of qubits that is not coupled in the chip's topology.

    Args:
        chip: Name of the chip.
        pair: The requested pair id (e.g. ``Q0-Q2``).
        known: The coupled pair ids of the chip.
    """

    def __init__(self, chip: str, pair: str, known: Sequence[str]) -> None:
        self.chip = chip
        self.pair = pair
        self.known = list(known)
        listed = ", ".join(self.known) or "none"
        super().__init__(f"pair {pair!r} is not coupled on chip {chip!r} (coupled pairs: {listed})")


class OffsetError(ChipError):
    """A chip offset cannot be stored or applied.

    Args:
        chip_id: The chip.
        problem: What is wrong.
    """

    def __init__(self, chip_id: str, problem: str) -> None:
        self.chip_id = chip_id
        self.problem = problem
        super().__init__(f"offsets of chip {chip_id!r}: {problem}")
