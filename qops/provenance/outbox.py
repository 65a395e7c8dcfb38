"""A durable local outbox for task records that could not reach MongoDB.

Records are appended to a SQLite file (``<data_dir>/provenance/outbox.sqlite``, in WAL
mode) with ``synchronous=FULL``, so an appended record survives a crash of the process or
the machine.
Replay takes them in append order, writes each through the repository (idempotent, so a
replay interrupted part-way is safe to repeat) and deletes it only once written. A record
that can never be written (it cannot be read back, or MongoDB refuses it for good), or that
failed :data:`MAX_ATTEMPTS` replays, moves to the ``dead_letter`` table with its reason and
the replay goes on with the next. A task run's record is kept once: appending it again (a
retry of the same run) replaces the waiting copy.

The same file is the recorder's write-ahead journal (table ``in_flight``): a record is
journaled (durably) before its first MongoDB write and removed after its last, and its
writer holds an exclusive ``flock`` on a lock file of its own meanwhile. A journaled record
whose lock is free belongs to a writer that died part-way (the kernel releases the locks of
a killed process); :meth:`Outbox.adopt_abandoned` moves such records into the outbox, whose
replay completes them (writing a record is idempotent).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sqlite3
import uuid
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
    """
CREATE TABLE IF NOT EXISTS in_flight (
    token TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    record_key TEXT NOT NULL,
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
    outputs = (
        ", ".join([*sorted(record.outputs), *(f.entity_id for f in record.files)]) or "no outputs"
    )
    return (
        f"{record.task_name} {record.status.value} for {record.qid or 'no qubit'} "
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
        self._ready = False
        """Whether this instance created the tables (once: they are never dropped)."""

    @contextlib.contextmanager
    def _connect(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """A connection; ``durable=False`` for writes a crash may lose (journal clean-up)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise OutboxError(str(self.path), f"cannot open: {e}") from e
        try:
            if not self._ready:
                # Write-ahead logging: a commit is one fsync of the log (three of the file
                # and its rollback journal otherwise); the file is qops's own.
                connection.execute("PRAGMA journal_mode=WAL")
                # One writer at a time creates or upgrades the tables: threads and processes
                # opening the same outbox at once would otherwise both add a missing column.
                connection.execute("BEGIN IMMEDIATE")
                try:
                    for statement in _SCHEMA:
                        connection.execute(statement)
                    present = {
                        str(row[1]) for row in connection.execute("PRAGMA table_info(outbox)")
                    }
                    for column, kind in _COLUMNS.items():
                        if column not in present:
                            connection.execute(f"ALTER TABLE outbox ADD COLUMN {column} {kind}")
                    connection.execute(
                        "CREATE UNIQUE INDEX IF NOT EXISTS outbox_record_key ON outbox (record_key)"
                    )
                    connection.execute("COMMIT")
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                self._ready = True
            # FULL: a commit is on disk before it returns. NORMAL (in WAL mode) may lose the
            # last commits on a power loss, never corrupt the file.
            connection.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
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

    @property
    def _journal_dir(self) -> Path:
        return self.path.with_name(self.path.name + ".in-flight")

    def begin(self, record: TaskRecord) -> InFlight:
        """Journal ``record`` durably before it is written to MongoDB; see :class:`InFlight`.

        Raises:
            OutboxError: The file cannot be written.
        """
        token = uuid.uuid4().hex
        try:
            self._journal_dir.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(self._journal_dir / f"{token}.lock", os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as e:
            raise OutboxError(str(self._journal_dir), f"cannot create a lock file: {e}") from e
        # Locked before the journal row exists: a row whose lock is free is abandoned.
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            with self._connect() as connection:
                connection.execute(
                    "INSERT INTO in_flight (token, started_at, record_key, payload) "
                    "VALUES (?, ?, ?, ?)",
                    (token, utc_now().isoformat(), record_key(record), encode_record(record)),
                )
        except OutboxError:
            os.close(descriptor)
            raise
        return InFlight(self, token, descriptor)

    def _end(self, flight: InFlight, *, keep: bool) -> None:
        try:
            if not keep:
                # Not durable: if a crash loses this delete, the entry is adopted and the
                # record written again, which changes nothing (writing is idempotent).
                with self._connect(durable=False) as connection:
                    connection.execute("DELETE FROM in_flight WHERE token = ?", (flight.token,))
                with contextlib.suppress(OSError):
                    (self._journal_dir / f"{flight.token}.lock").unlink()
        finally:
            os.close(flight.descriptor)

    def in_flight(self) -> list[tuple[str, str, bool]]:
        """Journaled records: ``(summary, started_at, abandoned)`` in journal order."""
        if not self.path.exists():
            return []
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT token, started_at, payload FROM in_flight ORDER BY started_at"
            ).fetchall()
        return [
            (_summary_of(str(payload)), str(started), not self._held(str(token)))
            for token, started, payload in rows
        ]

    def _held(self, token: str) -> bool:
        """Whether a live writer holds the lock of journal entry ``token``."""
        try:
            descriptor = os.open(self._journal_dir / f"{token}.lock", os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(descriptor)  # closing releases a lock taken here
        return False

    def adopt_abandoned(self) -> int:
        """Move the journaled records of writers that died into the outbox; return how many.

        Their replay completes them. A live writer's record is left alone (its lock is
        held); if a writer finishes meanwhile, its row is gone and nothing moves.
        """
        if not self.path.exists():
            return 0
        with self._connect() as connection:
            tokens = [str(r[0]) for r in connection.execute("SELECT token FROM in_flight")]
        moved = 0
        for token in tokens:
            if self._held(token):
                continue
            with self._connect() as connection:
                connection.execute("BEGIN IMMEDIATE")
                row = connection.execute(
                    "SELECT record_key, payload FROM in_flight WHERE token = ?", (token,)
                ).fetchone()
                if row is None:
                    connection.execute("COMMIT")
                    continue
                key, payload = str(row[0]), str(row[1])
                exists = connection.execute(
                    "SELECT seq FROM outbox WHERE record_key = ?", (key,)
                ).fetchone()
                if exists is None:
                    connection.execute(
                        "INSERT INTO outbox (enqueued_at, payload, record_key) VALUES (?, ?, ?)",
                        (utc_now().isoformat(), payload, key),
                    )
                connection.execute("DELETE FROM in_flight WHERE token = ?", (token,))
                connection.execute("COMMIT")
            with contextlib.suppress(OSError):
                (self._journal_dir / f"{token}.lock").unlink()
            moved += 1
            logger.warning(
                "provenance record %s was left part-written by a writer that died; "
                "moved to outbox %s to be completed",
                _summary_of(payload),
                self.path,
            )
        return moved

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


@dataclass
class InFlight:
    """A record journaled while it is written to MongoDB (from :meth:`Outbox.begin`).

    :meth:`done` removes it once every write succeeded; :meth:`release` keeps it but
    drops the lock (the write failed part-way in a live process), so the next
    :meth:`Outbox.adopt_abandoned` completes it like a dead writer's.
    """

    outbox: Outbox
    token: str
    descriptor: int

    def done(self) -> None:
        """The record is completely written: forget it."""
        self.outbox._end(self, keep=False)

    def release(self) -> None:
        """The record is (maybe) part-written: leave it to be completed."""
        self.outbox._end(self, keep=True)


def _summary_of(payload: str) -> str:
    try:
        return summarize(decode_record(payload))
    except ValueError:
        return f"unreadable record {payload[:120]!r}"
