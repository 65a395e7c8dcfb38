"""Errors of calibration runs: inputs, fits, the QCoDeS database, the tagging instrument.

Each failure has its own :class:`~qops.errors.QopsError` subclass built from structured
fields; the message names the step, the qubit (or pair) and the reason. None of them goes
away on a retry, and the calibration tasks do not retry them (nor a
:class:`~qops.chip.errors.ChipError`: an unknown qubit or pair).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from qops.errors import QopsError


class CalibrationError(QopsError):
    """Root of the errors raised by calibration measurements (:mod:`qops.calibration`)."""


class MissingInputError(CalibrationError):
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


class InvalidInputError(CalibrationError):
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


class FitError(CalibrationError):
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


class MeasurementDatabaseError(CalibrationError):
    """The QCoDeS database that measurements are written to cannot be used.

    Args:
        path: The database file.
        reason: What SQLite or the operating system reported.
    """

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"QCoDeS database {path} is not writable: {reason}")


class MetadataInstrumentError(CalibrationError):
    """The instrument passed to carry measurement tags cannot do so.

    Args:
        name: The instrument's name.
        reason: What is missing.
    """

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"metadata instrument {name!r} cannot tag measurements: {reason}")


class SessionOpenError(CalibrationError):
    """The versions after a calibration session were asked for while it is still open.

    Args:
        chip_id: The chip of the session.
    """

    def __init__(self, chip_id: str) -> None:
        self.chip_id = chip_id
        super().__init__(
            f"calibration session of chip {chip_id!r} is still open: its versions after "
            "are read when its block completes"
        )
