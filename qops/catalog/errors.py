"""Errors of the catalog and its sync sources."""

from __future__ import annotations

from qops.errors import NotFoundError, QopsError


class SourceReadError(QopsError):
    """A backend cannot read its source or one of its runs.

    Backends raise subclasses of it (the QCoDeS backend's ``QcodesDatabaseError``) for every
    read failure, so the sync service records a run-level failure, and retries it after a
    back-off, without knowing the backend.
    """


class InvalidSourceConfigError(QopsError):
    """A sync source's configuration does not validate.

    Args:
        source: The source name.
        problems: One ``field: message`` entry per violation.
    """

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"sync source {source!r} has an invalid config: {'; '.join(problems)}")


class SourceNotFoundError(NotFoundError):
    """No sync source of this name is registered."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no sync source named {name!r} (see: qops sources list)")


class SourceExistsError(QopsError):
    """A sync source of this name is already registered with a different definition."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"a sync source named {name!r} already exists with another definition; "
            "remove it first (qops sources remove NAME)"
        )


class SourceLocationTakenError(QopsError):
    """Another sync source already reads the same location (e.g. the same database file).

    Args:
        name: The source being created.
        existing: The source registered on that location.
        location: The location both name (a resolved path).
    """

    def __init__(self, name: str, existing: str, location: str) -> None:
        self.name = name
        self.existing = existing
        self.location = location
        super().__init__(
            f"cannot add sync source {name!r}: source {existing!r} already syncs {location}; "
            "one source per database (remove it first: qops sources remove NAME)"
        )


class UnknownBackendError(QopsError):
    """No sync backend with this identifier is installed."""

    def __init__(self, identifier: str, available: list[str]) -> None:
        self.identifier = identifier
        self.available = available
        super().__init__(
            f"no sync backend {identifier!r} is installed (entry-point group "
            f"qops.sync_backends; available: {', '.join(available) or 'none'})"
        )


class BackendDefinitionError(QopsError):
    """A backend class does not declare what the contract requires."""

    def __init__(self, backend: str, missing: list[str]) -> None:
        self.backend = backend
        self.missing = missing
        super().__init__(f"sync backend class {backend} does not declare {', '.join(missing)}")


class DatasetNotFoundError(NotFoundError):
    """No dataset has this id (or this ``alt_uid`` in this scope).

    Args:
        what: How the dataset was looked up (``uuid '...'``, ``alt_uid '...' in scope '...'``).
    """

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"no dataset with {what} in the catalog")


class FileVersionNotFoundError(NotFoundError):
    """The dataset has no file of this version (or no file at all).

    Args:
        uuid: The dataset.
        version: The version asked for (``None``: the latest).
        available: The versions the record lists.
    """

    def __init__(self, uuid: str, version: int | None, available: list[int]) -> None:
        self.uuid = uuid
        self.version = version
        self.available = available
        wanted = "a file" if version is None else f"file version {version}"
        listed = ", ".join(str(v) for v in available) or "none"
        super().__init__(f"dataset {uuid} has no {wanted} (versions listed: {listed})")


class DatasetFileMissingError(NotFoundError):
    """The record lists a file that is no longer where it says.

    Args:
        uuid: The dataset.
        version: The file version the record lists.
        location: Where the record says the file is.
        reason: What opening it reported.
    """

    def __init__(self, uuid: str, version: int, location: str, reason: str) -> None:
        self.uuid = uuid
        self.version = version
        self.location = location
        self.reason = reason
        super().__init__(
            f"the file of dataset {uuid} (version {version}) is missing: the record lists "
            f"{location}, which cannot be opened ({reason})"
        )


class InvalidDatasetQueryError(QopsError):
    """A catalog query parameter is malformed or out of range.

    Args:
        parameter: The parameter's name, as the caller gave it (``attr``, ``cursor``...).
        value: The value given.
        expected: What is accepted.
    """

    def __init__(self, parameter: str, value: object, expected: str) -> None:
        self.parameter = parameter
        self.value = value
        self.expected = expected
        super().__init__(f"{parameter}={value!r} is not accepted: expected {expected}")
