"""Recording task runs: straight to MongoDB, or to the outbox when MongoDB is unreachable.

Order is kept: while the outbox holds records, new ones join the end of it and the outbox
is drained first, so versions are numbered in the order task runs finished.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pymongo.errors import AutoReconnect, ConnectionFailure, NetworkTimeout

from qops.errors import MongoUnavailableError
from qops.provenance.ids import activity_id
from qops.provenance.models import RecordResult, TaskRecord
from qops.provenance.outbox import Outbox
from qops.provenance.repository import ProvenanceRepository

logger = logging.getLogger(__name__)

UNREACHABLE = (MongoUnavailableError, ConnectionFailure, AutoReconnect, NetworkTimeout)
"""Failures that mean "MongoDB cannot be reached now" (the record waits in the outbox).

Any other failure propagates, so the task run fails and Prefect retries it.
"""


class ProvenanceRecorder:
    """Writes task records, deferring to a durable outbox while MongoDB is unreachable.

    Args:
        repository: Returns a ready repository; may raise :class:`MongoUnavailableError`.
        outbox: Where records wait while MongoDB is unreachable.
    """

    def __init__(self, repository: Callable[[], ProvenanceRepository], outbox: Outbox) -> None:
        self._repository = repository
        self.outbox = outbox

    def record(self, record: TaskRecord) -> RecordResult:
        """Write ``record`` now if possible, else keep it in the outbox.

        Returns:
            What was written; ``deferred=True`` if the record waits in the outbox.

        Raises:
            OutboxError: MongoDB is unreachable and the outbox cannot be written either.
        """
        deferred = RecordResult(
            activity_id=activity_id(record.execution_id, record.task_id), deferred=True
        )
        if self.outbox.pending():
            self.outbox.append(record)
            results = self._replay()
            return results[-1] if results and not self.outbox.pending() else deferred
        try:
            return self._repository().record(record)
        except UNREACHABLE as e:
            logger.warning("MongoDB unreachable while recording provenance: %s", e)
            self.outbox.append(record)
            return deferred

    def replay(self) -> int:
        """Write waiting outbox records in order; return how many were written.

        Stops quietly (records stay) while MongoDB is still unreachable.
        """
        return len(self._replay())

    def _replay(self) -> list[RecordResult]:
        try:
            repository = self._repository()
            return self.outbox.replay(repository.record)
        except UNREACHABLE as e:
            logger.warning(
                "MongoDB still unreachable; %d provenance records wait in %s: %s",
                self.outbox.pending(),
                self.outbox.path,
                e,
            )
            return []
