"""Errors of the QCoDeS capability: reading lab databases and the ``qh_meta`` instrument."""

from __future__ import annotations

from qops.catalog.errors import SourceReadError
from qops.errors import QopsError


class QcodesDatabaseError(SourceReadError):
    """A QCoDeS database cannot be read.

    Args:
        path: The database file.
        reason: What is wrong, expected versus found.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"QCoDeS database {path}: {reason}")


class DatabaseNotFoundError(QcodesDatabaseError):
    """The database file does not exist."""

    def __init__(self, path: str) -> None:
        super().__init__(path, "no such file")


class DatabaseIsDirectoryError(QcodesDatabaseError):
    """The path given as the database is a directory."""

    def __init__(self, path: str) -> None:
        super().__init__(path, "is a directory, not a database file")


class DatabaseUnreadableError(QcodesDatabaseError):
    """The file exists but this OS account may not read it (permissions)."""

    def __init__(self, path: str, account: str, detail: str) -> None:
        self.account = account
        super().__init__(path, f"cannot be read by the account {account} ({detail})")


class NotSqliteError(QcodesDatabaseError):
    """The file is not an SQLite database."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(path, f"not an SQLite database ({detail})")


class NotQcodesDatabaseError(QcodesDatabaseError):
    """The file is SQLite but lacks the tables or columns of a QCoDeS database."""

    def __init__(self, path: str, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(path, f"not a QCoDeS database: missing {', '.join(sorted(missing))}")


class UnsupportedSchemaVersionError(QcodesDatabaseError):
    """The database's schema version is not one the reader supports (it is never upgraded)."""

    def __init__(self, path: str, found: int, supported: tuple[int, ...]) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            path,
            f"schema version {found} is not supported (supported: "
            f"{', '.join(str(v) for v in supported)}); the file is left untouched",
        )


class DatabaseLockedError(QcodesDatabaseError):
    """The database stayed locked by a writer longer than the busy timeout."""

    def __init__(self, path: str, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        super().__init__(path, f"locked by another process for more than {timeout_s:g} s")


class RunNotFoundError(QcodesDatabaseError):
    """No run with this id exists in the database."""

    def __init__(self, path: str, run_id: int) -> None:
        self.run_id = run_id
        super().__init__(path, f"no run with run_id {run_id}")


class RunReadError(QcodesDatabaseError):
    """One run's stored content (snapshot, description, data) cannot be decoded."""

    def __init__(self, path: str, run_id: int, part: str, reason: str) -> None:
        self.run_id = run_id
        self.part = part
        super().__init__(path, f"run {run_id}: {part} is unreadable: {reason}")


class QHMetaDataNameError(QopsError):
    """The metadata instrument was given a name other than ``qh_meta``."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"the QHMetaData instrument must be named 'qh_meta' (the sync looks it up "
            f"by that name in the snapshot), got {name!r}"
        )
