"""The one source of timestamps: timezone-aware UTC datetimes."""

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


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


def epoch_microseconds(value: datetime) -> int:
    """Return ``value`` as whole microseconds since the POSIX epoch (naive is UTC).

    Exact: a datetime's own resolution, computed in integers (no float rounding).
    """
    return (as_utc(value) - _EPOCH) // _MICROSECOND
