"""Errors of the simulated chip and its calibration measurements.

Each failure has its own :class:`~qops.errors.QopsError` subclass built from structured
fields; the message names the step, the qubit (or pair) and the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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


class MissingInputError(ChipError):
    """A calibration step was called without a parameter value it needs.

    Args:
        step: The calibration step (e.g. ``CheckRabi``).
        target: The qubit or pair id.
        missing: The input keys that were not given.
    """

    def __init__(self, step: str, target: str, missing: Sequence[str]) -> None:
        self.step = step
        self.target = target
        self.missing = list(missing)
        super().__init__(f"{step} on {target}: missing input {', '.join(self.missing)}")


class InvalidInputError(ChipError):
    """A calibration step was given an input value the chip cannot use.

    Args:
        step: The calibration step.
        target: The qubit or pair id.
        name: The input key.
        value: The offending value.
        reason: Why it cannot be used.
    """

    def __init__(self, step: str, target: str, name: str, value: float, reason: str) -> None:
        self.step = step
        self.target = target
        self.name = name
        self.value = value
        self.reason = reason
        super().__init__(f"{step} on {target}: input {name}={value!r} is not usable: {reason}")


class FitError(ChipError):
    """The data of a calibration measurement could not be fitted to a trustworthy value.

    Args:
        step: The calibration step.
        target: The qubit or pair id.
        reason: What was wrong (no resonance in the window, no convergence, error too large).
        run_id: The QCoDeS run that holds the data, so it can be inspected.
    """

    def __init__(self, step: str, target: str, reason: str, run_id: int | None = None) -> None:
        self.step = step
        self.target = target
        self.reason = reason
        self.run_id = run_id
        where = f" (QCoDeS run {run_id})" if run_id is not None else ""
        super().__init__(f"{step} on {target}: fit failed: {reason}{where}")


class MeasurementDatabaseError(ChipError):
    """The QCoDeS database that measurements are written to cannot be used.

    Args:
        path: The database file.
        reason: What SQLite or the operating system reported.
    """

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"QCoDeS database {path} is not writable: {reason}")


class MetadataInstrumentError(ChipError):
    """The instrument passed to carry measurement tags cannot do so.

    Args:
        name: The instrument's name.
        reason: What is missing.
    """

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"metadata instrument {name!r} cannot tag measurements: {reason}")
