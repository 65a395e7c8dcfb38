"""Errors of the 2300 backend: its configuration, its state store, its calibration source."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from qops.errors import QopsError


class BackendConfigError(QopsError):
    """The 2300 backend configuration cannot be used.

    Args:
        source: Where the configuration came from (file path or block name).
        reason: What is wrong, naming the field.
    """

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"backend configuration {source}: {reason}")


class CompilerPassError(BackendConfigError):
    """A compiler pass of the configuration does not resolve in OpenSquirrel.

    Args:
        source: Where the configuration came from.
        stage: The compiler stage (``decomposition``, ``mapping``, ...).
        index: Position of the pass in the stage.
        path: The pass's class path.
        method: The pass's method name.
        reason: Why it does not resolve.
    """

    def __init__(
        self, source: str, stage: str, index: int, path: str, method: str, reason: str
    ) -> None:
        self.stage = stage
        self.index = index
        self.path = path
        self.method = method
        super().__init__(
            source, f"compiler pass {stage}[{index}] {path}.{method} is not usable: {reason}"
        )


class StateStoreError(QopsError):
    """The backend state store could not be read or written.

    Args:
        chip_id: The chip whose state was concerned.
        reason: What went wrong.
    """

    def __init__(self, chip_id: str, reason: str) -> None:
        self.chip_id = chip_id
        self.reason = reason
        super().__init__(f"backend state of chip {chip_id!r}: {reason}")


class ChipBusyError(QopsError):
    """Another holder has the chip's exclusive state lease (e.g. a calibration runs).

    Args:
        chip_id: The chip.
        state: The state held.
        holder: Who holds it (e.g. the other flow run id).
        since: When the holder took it (UTC).
    """

    def __init__(self, chip_id: str, state: str, holder: str, since: datetime) -> None:
        self.chip_id = chip_id
        self.state = state
        self.holder = holder
        self.since = since
        super().__init__(
            f"chip {chip_id!r} is already {state} by {holder} since {since.isoformat()}; "
            "wait for it to finish or cancel it"
        )


class CalibrationUnavailableError(QopsError):
    """The calibration values of a chip could not be read (get_dynamic gets a failure reply).

    Args:
        chip_id: The chip whose values were asked for.
        reason: What went wrong.
    """

    def __init__(self, chip_id: str, reason: str) -> None:
        self.chip_id = chip_id
        self.reason = reason
        super().__init__(f"calibration values of chip {chip_id!r} unavailable: {reason}")


class ChipInUseError(QopsError):
    """The chip is held in the other exclusive use: a calibration runs, or a 2200 session is
    initialized (the two never overlap).

    Args:
        chip_id: The chip.
        wanted: The state asked for (``CALIBRATING`` or ``EXECUTING``).
        held: The state the chip is in.
    """

    _HINTS: ClassVar[dict[str, str]] = {
        "CALIBRATING": "a calibration runs; initialize again when it has finished",
        "EXECUTING": "a 2200 session is initialized; calibrate after it terminates",
        "OFFLINE": "an operator set it offline (qops backend set-state online ends that)",
    }

    def __init__(self, chip_id: str, wanted: str, held: str) -> None:
        self.chip_id = chip_id
        self.wanted = wanted
        self.held = held
        hint = self._HINTS.get(held, "wait until it is IDLE")
        super().__init__(f"chip {chip_id!r} cannot be {wanted}: it is {held} ({hint})")
