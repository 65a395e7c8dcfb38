"""Errors of the wire format: a message that does not follow the protocol."""

from __future__ import annotations

from qops.errors import QopsError


class ProtocolError(QopsError):
    """A message does not follow the protocol.

    Args:
        what: Which message, e.g. ``request``, ``get_dynamic reply``, ``publish_state``.
        reason: What is wrong with it, naming the field where possible.
    """

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(f"invalid {what}: {reason}")


class MessageTooLargeError(ProtocolError):
    """A message exceeds the size cap.

    Args:
        what: Which message.
        size: Its size in bytes.
        cap: The cap in bytes.
    """

    def __init__(self, what: str, size: int, cap: int) -> None:
        self.size = size
        self.cap = cap
        super().__init__(what, f"{size} bytes exceeds the cap of {cap} bytes")
