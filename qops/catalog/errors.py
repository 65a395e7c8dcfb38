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
