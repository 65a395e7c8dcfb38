"""The one source of timestamps: timezone-aware UTC datetimes."""

from datetime import UTC, datetime


def utc_now() -> datetime:
    """Return the current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Return ``value`` as an aware UTC datetime.

    Naive datetimes are taken to be UTC already (MongoDB returns naive UTC datetimes
    unless the client is created with ``tz_aware=True``).
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def from_timestamp(seconds: float) -> datetime:
    """Convert a POSIX timestamp in seconds to an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)
