"""Errors of the console's pages: things a page names that are not recorded."""

from __future__ import annotations

from qops.errors import NotFoundError


class ConsoleError(NotFoundError):
    """Base of the console's own "not found" errors (answered with a 404 page)."""


class UnknownParameterError(ConsoleError):
    """A parameter of a qid has no recorded version.

    Args:
        parameter_name: The parameter looked up.
        qid: The qubit or pair.
        project_id: The project searched.
    """

    def __init__(self, parameter_name: str, qid: str, project_id: str) -> None:
        self.parameter_name = parameter_name
        self.qid = qid
        self.project_id = project_id
        super().__init__(
            f"no version of parameter {parameter_name!r} of {qid!r} recorded in project "
            f"{project_id!r}"
        )


class UnknownChipError(ConsoleError):
    """A chip has no recorded calibration and no calibration value.

    Args:
        chip_id: The chip looked up.
        project_id: The project searched.
    """

    def __init__(self, chip_id: str, project_id: str) -> None:
        self.chip_id = chip_id
        self.project_id = project_id
        super().__init__(f"no chip {chip_id!r} recorded in project {project_id!r}")
