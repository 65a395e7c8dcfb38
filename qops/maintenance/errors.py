"""Errors of chip maintenance."""

from __future__ import annotations

from qops.errors import NotFoundError, QopsError


class MaintenanceError(QopsError):
    """Base of maintenance errors."""


class PolicyError(MaintenanceError):
    """A maintenance policy file cannot be used.

    Args:
        source: The file.
        problem: What is wrong with it.
    """

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"maintenance policy {source}: {problem}")


class InvalidTargetError(MaintenanceError):
    """A health query names no project or chip.

    Args:
        field: The query field.
        value: What it was.
    """

    def __init__(self, field: str, value: str) -> None:
        self.field = field
        self.value = value
        super().__init__(f"{field} {value!r}: both must be non-empty")


class ChipNotFoundError(MaintenanceError, NotFoundError):
    """No calibration of a chip is recorded in a project.

    Args:
        chip_id: The chip.
        project_id: The project.
    """

    def __init__(self, chip_id: str, project_id: str) -> None:
        self.chip_id = chip_id
        self.project_id = project_id
        super().__init__(
            f"no calibration of chip {chip_id!r} is recorded in project {project_id!r}"
        )
