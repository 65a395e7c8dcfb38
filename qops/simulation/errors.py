"""Errors of running a circuit: one that cannot be read or cannot run on the chip."""

from __future__ import annotations

from qops.errors import QopsError


class CircuitError(QopsError):
    """A circuit that cannot be read, or asks for something the chip cannot do.

    Args:
        reason: What is wrong, naming the statement or the limit where possible.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"circuit: {reason}")


class NoiseParameterError(QopsError):
    """A calibration value that cannot describe noise (e.g. a fidelity above 1).

    Args:
        what: The value, e.g. ``t1 of qubit 0``.
        value: What it was.
        expected: What it should be.
    """

    def __init__(self, what: str, value: float, expected: str) -> None:
        self.what = what
        self.value = value
        self.expected = expected
        super().__init__(f"noise parameter {what} is {value!r}; expected {expected}")
