"""Recording task runs: straight to MongoDB, or to the outbox when MongoDB is unreachable.

Order is kept: while the outbox holds records, new ones join the end of it and the outbox
is drained first, so versions are numbered in the order task runs finished. A record that
can never be written leaves the outbox for its dead-letter table (see
:mod:`qops.provenance.outbox`).

Crash safety: a record written straight to MongoDB is journaled in the outbox file first
(write-ahead, ``synchronous=FULL``) and forgotten after its last write. If the process dies
in between, the next record or replay on this machine finds the journal entry abandoned,
moves it into the outbox and completes it there (see :meth:`Outbox.adopt_abandoned`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bson.errors import InvalidDocument
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    DocumentTooLarge,
    NetworkTimeout,
    OperationFailure,
)

from qops.config import MongoSettings
from qops.errors import MongoUnavailableError
from qops.mongo import database
from qops.provenance.errors import InvalidValueError
from qops.provenance.ids import activity_id
from qops.provenance.models import RecordResult, TaskRecord
from qops.provenance.outbox import Failure, Outbox, ReplayReport, outbox_path, record_key
from qops.provenance.repository import (
    EntityIdCollisionError,
    MongoProvenanceRepository,
    ProvenanceRepository,
)

logger = logging.getLogger(__name__)

UNREACHABLE = (MongoUnavailableError, ConnectionFailure, AutoReconnect, NetworkTimeout)
"""Failures that mean "MongoDB cannot be reached now" (the record waits in the outbox).

Any other failure propagates, so the task run fails and Prefect retries it.
"""


PERMANENT: tuple[type[Exception], ...] = (
    EntityIdCollisionError,
    InvalidValueError,
    InvalidDocument,
    DocumentTooLarge,
    OverflowError,
    ValueError,
    TypeError,
)
"""Failures that mean "this record can never be written" (an int beyond 64 bits, an entity id
held by another project, a document too large, a record that does not validate)."""

_TOO_LARGE_CODES = {10334, 17419, 17420}
"""Server error codes of a document over the BSON size limit."""


def classify(error: Exception) -> Failure:
    """How the outbox handles a failed write of one of its records."""
    if isinstance(error, UNREACHABLE):
        return Failure.UNREACHABLE
    if isinstance(error, PERMANENT):
        return Failure.PERMANENT
    if isinstance(error, OperationFailure) and error.code in _TOO_LARGE_CODES:
        return Failure.PERMANENT
    return Failure.TRANSIENT


_INDEXED: set[tuple[str, str]] = set()
"""Databases whose provenance indexes this process has ensured."""
_INDEXED_LOCK = threading.Lock()


def lazy_mongo_repository(settings: MongoSettings) -> Callable[[], ProvenanceRepository]:
    """The repository of ``settings``'s database, connected (and indexed) on first use.

    Connecting on first use lets a task run record to the outbox while MongoDB is down.
    """
    held: list[MongoProvenanceRepository] = []

    def get() -> ProvenanceRepository:
        if not held:
            repository = MongoProvenanceRepository(database(settings))
            # The unique version index is what keeps version numbers gap-free under
            # concurrent writers, so it must exist before the first write.
            url = settings.mongodb_url
            key = (url.get_secret_value() if url else "", settings.mongodb_db)
            with _INDEXED_LOCK:
                if key not in _INDEXED:
                    repository.ensure_indexes()
                    _INDEXED.add(key)
            held.append(repository)
        return held[0]

    return get


class ProvenanceRecorder:
    """Writes task records, deferring to a durable outbox while MongoDB is unreachable.

    Args:
        repository: Returns a ready repository; may raise :class:`MongoUnavailableError`.
        outbox: Where records wait while MongoDB is unreachable.
    """

    def __init__(self, repository: Callable[[], ProvenanceRepository], outbox: Outbox) -> None:
        self._repository = repository
        self.outbox = outbox
        self.last_report = ReplayReport()
        """What the last replay did (written, dead-lettered, blocked)."""
        self.last_unreachable: str | None = None
        """Why the last replay stopped because MongoDB is unreachable, if it did."""

    @classmethod
    def mongo(cls, settings: MongoSettings) -> ProvenanceRecorder:
        """The recorder of ``settings``'s database and its data directory's outbox."""
        return cls(lazy_mongo_repository(settings), Outbox(outbox_path(settings.data_dir)))

    def record(self, record: TaskRecord) -> RecordResult:
        """Write ``record`` now if possible, else keep it in the outbox.

        While the outbox holds records, ``record`` joins its end and the outbox is drained:
        records that can never be written are dead-lettered on the way, so one bad record
        does not hold up the others, and a run's record is kept once however often its
        run is retried.

        Returns:
            What was written; ``deferred=True`` if the record waits in the outbox.

        Raises:
            OutboxError: The outbox file (which holds the write-ahead journal) cannot be
                written; nothing was written to MongoDB.
            Exception: The record itself can never be written (it went to the
                dead-letter table, or it was refused without the outbox): the error.
        """
        deferred = RecordResult(
            activity_id=activity_id(record.execution_id, record.task_id), deferred=True
        )
        self.outbox.adopt_abandoned()
        if self.outbox.pending():
            self.outbox.append(record)
            report = self._replay()
            own = report.errors.get(record_key(record))
            if own is not None:
                raise own
            if self.outbox.contains(record):
                return deferred
            mine = [r for r in report.written if r.activity_id == deferred.activity_id]
            return mine[-1] if mine else deferred
        flight = self.outbox.begin(record)
        try:
            result = self._repository().record(record)
        except UNREACHABLE as e:
            logger.warning("MongoDB unreachable while recording provenance: %s", e)
            self.outbox.append(record)
            flight.done()
            return deferred
        except Exception as e:
            if classify(e) is Failure.PERMANENT:
                flight.done()  # never writable: nothing to complete later
            else:
                flight.release()  # part-written: the next record or replay completes it
            raise
        flight.done()
        return result

    def replay(self) -> int:
        """Write waiting outbox records in order; return how many were written.

        Records a writer on this machine left part-written (see :meth:`record`) join the
        outbox first. Stops quietly (records stay) while MongoDB is still unreachable; see
        :attr:`last_report` for what was dead-lettered or blocks the outbox.
        """
        self.outbox.adopt_abandoned()
        return len(self._replay().written)

    def _replay(self) -> ReplayReport:
        self.last_report = ReplayReport()
        self.last_unreachable = None
        try:
            repository = self._repository()
            self.last_report = self.outbox.replay(repository.record, classify)
        except UNREACHABLE as e:
            self.last_unreachable = f"MongoDB unreachable: {type(e).__name__}: {e}"
            logger.warning(
                "MongoDB still unreachable; %d provenance records wait in %s: %s",
                self.outbox.pending(),
                self.outbox.path,
                e,
            )
        return self.last_report
