"""Errors of the 2200 side: 2300 did not answer, or refused a request."""

from __future__ import annotations

from qops.errors import QopsError


class BackendUnreachableError(QopsError):
    """2300 did not answer a request within the timeout, after every retry.

    Args:
        address: The REQ socket's address.
        command: The command sent.
        attempts: How many times it was sent.
        timeout_s: Seconds waited for each attempt.
        detail: Why the last attempt failed.
    """

    def __init__(
        self, address: str, command: str, attempts: int, timeout_s: float, detail: str
    ) -> None:
        self.address = address
        self.command = command
        self.attempts = attempts
        self.timeout_s = timeout_s
        self.detail = detail
        super().__init__(
            f"2300 at {address} gave no usable reply to {command} after {attempts} attempt(s) "
            f"of {timeout_s:g} s: {detail}"
        )


class BackendFailureError(QopsError):
    """2300 answered a request with a failure reply.

    Args:
        address: The REQ socket's address.
        command: The command sent.
        error_msg: The ``error_msg`` of the failure reply.
    """

    def __init__(self, address: str, command: str, error_msg: str) -> None:
        self.address = address
        self.command = command
        self.error_msg = error_msg
        super().__init__(f"2300 at {address} refused {command}: {error_msg}")
