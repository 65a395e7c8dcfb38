"""The qops error hierarchy.

Every failure qops reports derives from :class:`QopsError`. Each subclass is built from
structured fields and renders a one-line message that says what failed, where, and what
was expected versus found, so the CLI can print it as is.
"""

from __future__ import annotations


class QopsError(Exception):
    """Root of every error qops raises on purpose."""


class ConfigurationError(QopsError):
    """A setting has a value qops cannot use.

    Args:
        setting: Name of the setting, as the user sets it (e.g. ``QOPS_MONGODB_URL``).
        value: The offending value (secrets must be redacted by the caller).
        reason: What is wrong with it.
    """

    def __init__(self, setting: str, value: str, reason: str) -> None:
        self.setting = setting
        self.value = value
        self.reason = reason
        super().__init__(f"{setting}={value!r} is not usable: {reason}")


class MongoUnavailableError(QopsError):
    """A configured MongoDB server did not answer.

    Args:
        url: The server URL with credentials redacted.
        reason: What the driver reported.
        timeout_s: How long qops waited.
    """

    def __init__(self, url: str, reason: str, timeout_s: float) -> None:
        self.url = url
        self.reason = reason
        self.timeout_s = timeout_s
        super().__init__(f"MongoDB at {url} did not answer within {timeout_s:g} s: {reason}")


class EmbeddedMongoError(QopsError):
    """The embedded MongoDB-compatible server could not be started, found or stopped.

    Args:
        data_path: The directory that holds the server's files.
        reason: What went wrong and, where possible, what to do about it.
    """

    def __init__(self, data_path: str, reason: str) -> None:
        self.data_path = data_path
        self.reason = reason
        super().__init__(f"embedded MongoDB in {data_path}: {reason}")


class DataDirError(QopsError):
    """The qops data directory cannot be created or written.

    Args:
        path: The directory.
        reason: The operating system's explanation.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"data directory {path} is not writable: {reason} (set QOPS_DATA_DIR to another path)"
        )


class NotFoundError(QopsError):
    """Something looked up by its id or name does not exist.

    The base of every "no such thing" error, so an HTTP exception handler answers 404 for
    all of them and 422 or 503 for the rest.
    """
