"""A durable local outbox for task records that could not reach MongoDB.

Records are appended to a SQLite file (``<data_dir>/provenance/outbox.sqlite``) with
``synchronous=FULL``, so an appended record survives a crash of the process or the machine.
Replay takes them in append order, writes each through the repository (idempotent, so a
replay interrupted part-way is safe to repeat) and deletes it only once written. A record
that can never be written (it cannot be read back, or MongoDB refuses it for good), or that
failed :data:`MAX_ATTEMPTS` replays, moves to the ``dead_letter`` table with its reason and
the replay goes on with the next. A task run's record is kept once: appending it again (a
retry of the same run) replaces the waiting copy.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path

from qops.provenance.errors import OutboxError
from qops.provenance.ids import activity_id
from qops.provenance.models import RecordResult, TaskRecord
from qops.timeutil import utc_now

logger = logging.getLogger(__name__)

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    enqueued_at TEXT NOT NULL,
    payload TEXT NOT NULL
)
""",
    """
CREATE TABLE IF NOT EXISTS dead_letter (
    seq INTEGER PRIMARY KEY,
    enqueued_at TEXT NOT NULL,
    failed_at TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    reason TEXT NOT NULL,
    payload TEXT NOT NULL
)
""",
)
_COLUMNS = {
    "attempts": "INTEGER NOT NULL DEFAULT 0",
    "last_error": "TEXT",
    "record_key": "TEXT",
}
"""Columns added to the ``outbox`` table of files written before they existed."""

MAX_ATTEMPTS = 3
"""Replays of a record failing for a reason other than "MongoDB unreachable" before it moves
to the dead-letter table (a record that can never be written moves at its first failure)."""


class Failure(Enum):
    """How a failed write of an outbox record is handled."""

    UNREACHABLE = "unreachable"
    """MongoDB cannot be reached: stop, the record and all after it wait."""
    PERMANENT = "permanent"
    """The record can never be written: dead-letter it at once and go on."""
    TRANSIENT = "transient"
    """Count an attempt; dead-letter it after :data:`MAX_ATTEMPTS`, else stop."""


@dataclass(frozen=True)
class DeadLetter:
    """A record moved out of the outbox because it could not be written.

    Attributes:
        seq: Its outbox sequence number.
        enqueued_at: When it was appended (ISO text).
        failed_at: When it was moved (ISO text).
        attempts: Writes tried.
        reason: The last failure, as ``"<ErrorType>: <message>"``.
        summary: What the record is (execution, task, qid, outputs), or the raw payload's
            start if it cannot be read.
    """

    seq: int
    enqueued_at: str
    failed_at: str
    attempts: int
    reason: str
    summary: str


@dataclass
class ReplayReport:
    """What one replay did.

    Attributes:
        written: Results of the records written, in order.
        dead: Records moved to the dead-letter table.
        blocked: Why the head record stays (after a failure under :data:`MAX_ATTEMPTS`).
        errors: The exception of each dead-lettered record, by its record key.
    """

    written: list[RecordResult] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    blocked: str | None = None
    errors: dict[str, Exception] = field(default_factory=dict)


def record_key(record: TaskRecord) -> str:
    """The key under which a task run's record is kept once (its activity and status)."""
    return f"{activity_id(record.execution_id, record.task_id)}|{record.status.value}"


def summarize(record: TaskRecord) -> str:
    """One line naming a record: execution, task, qid and outputs."""
    outputs = ", ".join(sorted(record.outputs)) or "no outputs"
    return (
        f"{record.task_name} {record.status.value} for {record.qid} "
        f"(execution {record.execution_id}, task run {record.task_id}; {outputs})"
    )


def _reason(error: BaseException) -> str:
    text = str(error).strip() or repr(error)
    if len(text) > 2000:
        text = text[:2000] + "..."
    return f"{type(error).__name__}: {text}"


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
            for statement in _SCHEMA:
                connection.execute(statement)
            present = {str(row[1]) for row in connection.execute("PRAGMA table_info(outbox)")}
            for column, kind in _COLUMNS.items():
                if column not in present:
                    connection.execute(f"ALTER TABLE outbox ADD COLUMN {column} {kind}")
            connection.execute(
                "CREATE UNIQUE INDEX IF NOT EXISTS outbox_record_key ON outbox (record_key)"
            )
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
        key = record_key(record)
        payload = encode_record(record)
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            row = connection.execute(
                "SELECT seq FROM outbox WHERE record_key = ?", (key,)
            ).fetchone()
            if row is None:
                cursor = connection.execute(
                    "INSERT INTO outbox (enqueued_at, payload, record_key) VALUES (?, ?, ?)",
                    (utc_now().isoformat(), payload, key),
                )
                seq = cursor.lastrowid
            else:
                seq = int(row[0])
                connection.execute(
                    "UPDATE outbox SET payload = ?, attempts = 0, last_error = NULL WHERE seq = ?",
                    (payload, seq),
                )
            connection.execute("COMMIT")
        assert seq is not None
        logger.warning(
            "provenance of task run %s:%s kept in outbox %s (seq %d)",
            record.execution_id,
            record.task_id,
            self.path,
            seq,
        )
        return seq

    def contains(self, record: TaskRecord) -> bool:
        """Whether ``record`` (its task run and status) waits in the outbox."""
        if not self.path.exists():
            return False
        with self._connect() as connection:
            row = connection.execute(
                "SELECT 1 FROM outbox WHERE record_key = ?", (record_key(record),)
            ).fetchone()
        return row is not None

    def waiting(self) -> list[str]:
        """One line per waiting record, in order (see :func:`summarize`)."""
        if not self.path.exists():
            return []
        with self._connect() as connection:
            rows = connection.execute("SELECT seq, payload FROM outbox ORDER BY seq").fetchall()
        return [f"#{int(seq)} {_summary_of(str(payload))}" for seq, payload in rows]

    def dead_letters(self) -> list[DeadLetter]:
        """Records moved to the dead-letter table, in outbox order."""
        if not self.path.exists():
            return []
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT seq, enqueued_at, failed_at, attempts, reason, payload "
                "FROM dead_letter ORDER BY seq"
            ).fetchall()
        return [
            DeadLetter(
                int(r[0]), str(r[1]), str(r[2]), int(r[3]), str(r[4]), _summary_of(str(r[5]))
            )
            for r in rows
        ]

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

    def replay(
        self,
        write: Callable[[TaskRecord], RecordResult],
        classify: Callable[[Exception], Failure],
        *,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> ReplayReport:
        """Write waiting records in order with ``write``.

        A record is deleted only after ``write`` returned. A failure is handled as
        ``classify`` says (see :class:`Failure`): ``UNREACHABLE`` propagates with the record
        (and all after it) left waiting; ``PERMANENT``, or ``TRANSIENT`` for the
        ``max_attempts``-th time, moves the record to the dead-letter table and goes on;
        an earlier ``TRANSIENT`` failure counts the attempt and stops (``blocked``). A
        record that cannot be read back is dead-lettered at once.
        """
        report = ReplayReport()
        if not self.path.exists():
            return report
        with self._exclusive(), self._connect() as connection:
            while True:
                row = connection.execute(
                    "SELECT seq, enqueued_at, payload, attempts, record_key "
                    "FROM outbox ORDER BY seq LIMIT 1"
                ).fetchone()
                if row is None:
                    return report
                seq, payload, attempts = int(row[0]), str(row[2]), int(row[3])
                key = str(row[4]) if row[4] is not None else f"seq-{seq}"
                try:
                    record = decode_record(payload)
                except ValueError as e:  # a pydantic ValidationError is a ValueError
                    self._bury(connection, report, row, attempts + 1, e, key)
                    continue
                try:
                    result = write(record)
                except Exception as e:
                    kind = classify(e)
                    if kind is Failure.UNREACHABLE:
                        raise
                    attempts += 1
                    if kind is Failure.PERMANENT or attempts >= max_attempts:
                        self._bury(connection, report, row, attempts, e, key)
                        continue
                    connection.execute(
                        "UPDATE outbox SET attempts = ?, last_error = ? WHERE seq = ?",
                        (attempts, _reason(e), seq),
                    )
                    report.blocked = (
                        f"record #{seq} failed {attempts} of {max_attempts} attempts: {_reason(e)}"
                    )
                    logger.warning("provenance outbox %s: %s", self.path, report.blocked)
                    return report
                connection.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
                report.written.append(result)
                logger.info("replayed provenance record %d from %s", seq, self.path)

    def _bury(
        self,
        connection: sqlite3.Connection,
        report: ReplayReport,
        row: tuple[object, ...],
        attempts: int,
        error: Exception,
        key: str,
    ) -> None:
        """Move the outbox row ``row`` to the dead-letter table (one transaction)."""
        seq, enqueued_at, payload = int(str(row[0])), str(row[1]), str(row[2])
        failed_at = utc_now().isoformat()
        reason = _reason(error)
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(
            "INSERT OR REPLACE INTO dead_letter "
            "(seq, enqueued_at, failed_at, attempts, reason, payload) VALUES (?, ?, ?, ?, ?, ?)",
            (seq, enqueued_at, failed_at, attempts, reason, payload),
        )
        connection.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
        connection.execute("COMMIT")
        letter = DeadLetter(seq, enqueued_at, failed_at, attempts, reason, _summary_of(payload))
        report.dead.append(letter)
        report.errors[key] = error
        logger.error(
            "provenance record #%d (%s) moved to the dead-letter table of %s after %d attempts: %s",
            seq,
            letter.summary,
            self.path,
            attempts,
            reason,
        )


def _summary_of(payload: str) -> str:
    try:
        return summarize(decode_record(payload))
    except ValueError:
        return f"unreadable record {payload[:120]!r}"
