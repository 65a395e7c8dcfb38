"""Errors of the provenance capability, each built from structured fields."""

from __future__ import annotations

from qops.errors import NotFoundError, QopsError


class ProvenanceError(QopsError):
    """Root of the provenance errors."""


class InvalidEntityIdError(ProvenanceError):
    """An entity id has none of the forms of :mod:`qops.provenance.ids`.

    Args:
        entity_id: The offending id.
        reason: What is wrong with it.
    """

    def __init__(self, entity_id: str, reason: str) -> None:
        self.entity_id = entity_id
        self.reason = reason
        super().__init__(
            f"entity id {entity_id!r} is malformed: {reason} "
            "(expected {parameter_name}:{qid}:{execution_id}:{task_id}, dataset:{guid} or "
            "dataset-file:{dataset_uuid}:v{version})"
        )


class InvalidQueryError(ProvenanceError):
    """A query parameter is out of range or malformed.

    Args:
        parameter: Name of the query parameter.
        value: The value given.
        expected: What is accepted.
    """

    def __init__(self, parameter: str, value: object, expected: str) -> None:
        self.parameter = parameter
        self.value = value
        self.expected = expected
        super().__init__(f"{parameter}={value!r} is not accepted: expected {expected}")


class EntityNotFoundError(ProvenanceError, NotFoundError):
    """No entity (parameter version, raw measurement, file version) has this id in the project.

    Args:
        entity_id: The id looked up.
        project_id: The project searched.
    """

    def __init__(self, entity_id: str, project_id: str) -> None:
        self.entity_id = entity_id
        self.project_id = project_id
        what = "parameter version"
        if entity_id.startswith("dataset-file:"):
            what = "synced file version"
        elif entity_id.startswith("dataset:"):
            what = "raw measurement (QCoDeS run)"
        super().__init__(f"no {what} {entity_id!r} in project {project_id!r}")


class ExecutionNotFoundError(ProvenanceError, NotFoundError):
    """An execution id has no recorded parameter versions or activities in the project.

    Args:
        execution_id: The id looked up.
        project_id: The project searched.
    """

    def __init__(self, execution_id: str, project_id: str) -> None:
        self.execution_id = execution_id
        self.project_id = project_id
        super().__init__(f"no execution {execution_id!r} recorded in project {project_id!r}")


class MissingInputError(ProvenanceError):
    """A calibration task declares an input parameter that has no current version.

    Args:
        task_name: The task.
        parameter_names: The inputs without a current version.
        qid: The qubit the task runs for.
        project_id: The project searched.
    """

    def __init__(
        self, task_name: str, parameter_names: list[str], qid: str, project_id: str
    ) -> None:
        self.task_name = task_name
        self.parameter_names = parameter_names
        self.qid = qid
        self.project_id = project_id
        names = ", ".join(parameter_names)
        super().__init__(
            f"task {task_name!r} needs input {names} for {qid!r} in project {project_id!r}, "
            "but none is recorded; run the task that produces it first"
        )


class OutputMismatchError(ProvenanceError):
    """A calibration task returned outputs other than those it declares.

    Args:
        task_name: The task.
        missing: Declared outputs it did not return.
        unexpected: Returned outputs it does not declare.
    """

    def __init__(self, task_name: str, missing: list[str], unexpected: list[str]) -> None:
        self.task_name = task_name
        self.missing = missing
        self.unexpected = unexpected
        super().__init__(
            f"task {task_name!r} returned outputs that differ from its declaration: "
            f"missing {missing or 'none'}, undeclared {unexpected or 'none'}"
        )


class OutboxError(ProvenanceError):
    """The local provenance outbox cannot be written or read.

    Args:
        path: The outbox file.
        reason: What went wrong.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"provenance outbox {path}: {reason}")


class InvalidValueError(ProvenanceError, ValueError):
    """A task output cannot be stored (an int outside 64 bits, a str too long, ...).

    Args:
        parameter_name: The output.
        reason: What is wrong with its value.
        task_name: The task that returned it, if known.
    """

    def __init__(self, parameter_name: str, reason: str, task_name: str | None = None) -> None:
        self.parameter_name = parameter_name
        self.reason = reason
        self.task_name = task_name
        by = f" returned by task {task_name!r}" if task_name else ""
        super().__init__(f"parameter {parameter_name!r}{by} cannot be recorded: {reason}")


class OutboxPendingError(ProvenanceError):
    """Records wait in this machine's outbox, so a task's inputs may not be current.

    Args:
        task_name: The task that needs its inputs.
        path: The outbox file.
        waiting: One line per waiting record (execution, task, qid, outputs).
        reason: Why they could not be written now.
    """

    def __init__(self, task_name: str, path: str, waiting: list[str], reason: str) -> None:
        self.task_name = task_name
        self.path = path
        self.waiting = waiting
        self.reason = reason
        shown = "; ".join(waiting[:5]) + (
            f"; and {len(waiting) - 5} more" if len(waiting) > 5 else ""
        )
        super().__init__(
            f"task {task_name!r} does not read its inputs while {len(waiting)} provenance "
            f"records wait in {path} ({reason}): {shown}; run `qops provenance replay` "
            "once MongoDB is reachable"
        )
