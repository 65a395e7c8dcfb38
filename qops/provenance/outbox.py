"""A durable local outbox for task records that could not reach MongoDB.

Records are appended to a SQLite file (``<data_dir>/provenance/outbox.sqlite``) with
``synchronous=FULL``, so an appended record survives a crash of the process or the machine.
Replay takes them in append order, writes each through the repository (idempotent, so a
replay interrupted part-way is safe to repeat) and deletes it only once written.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from qops.provenance.errors import OutboxError
from qops.provenance.models import RecordResult, TaskRecord
from qops.timeutil import utc_now

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    enqueued_at TEXT NOT NULL,
    payload TEXT NOT NULL
)
"""


def _encode_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in the outbox")


def encode_record(record: TaskRecord) -> str:
    """Serialise a record; NaN and ±inf are kept as the JSON tokens Python reads back."""
    return json.dumps(record.model_dump(mode="python"), default=_encode_default, allow_nan=True)


def decode_record(payload: str) -> TaskRecord:
    """Read back what :func:`encode_record` wrote."""
    return TaskRecord.model_validate(json.loads(payload))


def outbox_path(data_dir: Path) -> Path:
    """Return where the outbox of a data directory lives."""
    return Path(data_dir).expanduser() / "provenance" / "outbox.sqlite"


class Outbox:
    """Ordered, durable queue of :class:`TaskRecord` s awaiting MongoDB.

    Args:
        path: The SQLite file (created with its directory on first use).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_suffix(".lock")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise OutboxError(str(self.path), f"cannot open: {e}") from e
        try:
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute(_SCHEMA)
            yield connection
        except sqlite3.Error as e:
            raise OutboxError(str(self.path), str(e)) from e
        finally:
            connection.close()

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Serialise replays across processes so records are written in order."""
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def append(self, record: TaskRecord) -> int:
        """Append ``record`` durably; return its sequence number.

        Raises:
            OutboxError: The file cannot be written.
        """
        with self._connect() as connection:
            cursor = connection.execute(
                "INSERT INTO outbox (enqueued_at, payload) VALUES (?, ?)",
                (utc_now().isoformat(), encode_record(record)),
            )
            seq = cursor.lastrowid
        assert seq is not None
        logger.warning(
            "provenance of task run %s:%s kept in outbox %s (seq %d)",
            record.execution_id,
            record.task_id,
            self.path,
            seq,
        )
        return seq

    def pending(self) -> int:
        """How many records wait for replay (0 if the outbox file does not exist)."""
        if not self.path.exists():
            return 0
        with self._connect() as connection:
            row = connection.execute("SELECT COUNT(*) FROM outbox").fetchone()
        return int(row[0])

    def peek(self) -> list[TaskRecord]:
        """All waiting records in order, without removing them."""
        if not self.path.exists():
            return []
        with self._connect() as connection:
            rows = connection.execute("SELECT payload FROM outbox ORDER BY seq").fetchall()
        return [decode_record(str(row[0])) for row in rows]

    def replay(self, write: Callable[[TaskRecord], RecordResult]) -> list[RecordResult]:
        """Write waiting records in order with ``write``; stop at the first failure.

        A record is deleted only after ``write`` returned, so a failure leaves it (and all
        after it) for the next replay; the exception propagates.
        """
        if not self.path.exists():
            return []
        results: list[RecordResult] = []
        with self._exclusive(), self._connect() as connection:
            while True:
                row = connection.execute(
                    "SELECT seq, payload FROM outbox ORDER BY seq LIMIT 1"
                ).fetchone()
                if row is None:
                    return results
                seq, payload = int(row[0]), str(row[1])
                results.append(write(decode_record(payload)))
                connection.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
                logger.info("replayed provenance record %d from %s", seq, self.path)
