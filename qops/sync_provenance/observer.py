"""Recording each new file version of a sync as provenance (see the package)."""

from __future__ import annotations

import logging
import socket

from qops.catalog.service import FileWritten
from qops.config import MongoSettings
from qops.provenance.config import ProvenanceSettings
from qops.provenance.models import (
    ActivityStatus,
    Agent,
    AgentType,
    DatasetEntity,
    DatasetFileEntity,
    TaskRecord,
)
from qops.provenance.recorder import ProvenanceRecorder
from qops.provenance.repository import SYNC_TASK_TYPE

logger = logging.getLogger(__name__)

SYNC_TASK_NAME = "SyncRun"
"""The ``task_name`` of a sync's activity."""


def sync_record(event: FileWritten, project_id: str, host: str) -> TaskRecord:
    """The task record of one synced file version.

    Its ids come from the file version alone (execution ``sync-{source}``, task
    ``{guid}-v{version}``), so a sync redone after a crash or a retry writes the same
    documents again, never a second copy.
    """
    file = event.file
    return TaskRecord(
        project_id=project_id,
        chip_id="",
        execution_id=f"sync-{event.source}",
        task_id=f"{event.guid}-v{file.version}",
        task_name=SYNC_TASK_NAME,
        task_type=SYNC_TASK_TYPE,
        qid="",
        started_at=event.started_at,
        ended_at=event.ended_at,
        status=ActivityStatus.COMPLETED,
        agent=Agent(agent_type=AgentType.SYSTEM, name=f"sync:{event.source}", host=host),
        datasets=[
            DatasetEntity(
                guid=event.guid, name=event.name, run_id=event.run_id, source_db=event.location
            )
        ],
        files=[
            DatasetFileEntity(
                dataset_uuid=event.dataset_uuid,
                guid=event.guid,
                version=file.version,
                name=file.name,
                location=file.location,
                md5=file.md5,
                size=file.size,
                rows=file.rows,
                complete=file.complete,
                created=file.created,
                source=event.source,
            )
        ],
    )


class SyncProvenance:
    """Writes each new file version of a sync to provenance (the catalog's observer).

    Args:
        recorder: Where records go (MongoDB, or the outbox while it is unreachable).
        project_id: The provenance project the sync records in.
        host: The machine recorded with the sync's agent (default: this one).
    """

    def __init__(
        self, recorder: ProvenanceRecorder, project_id: str, host: str | None = None
    ) -> None:
        self.recorder = recorder
        self.project_id = project_id
        self.host = host or socket.gethostname()

    @classmethod
    def mongo(
        cls, settings: MongoSettings, provenance: ProvenanceSettings | None = None
    ) -> SyncProvenance:
        """The observer of ``settings``'s database, in the configured project."""
        project = (provenance or ProvenanceSettings()).project_id
        return cls(ProvenanceRecorder.mongo(settings), project)

    def file_written(self, event: FileWritten) -> None:
        """Record the sync of ``event``'s file version (idempotent)."""
        result = self.recorder.record(sync_record(event, self.project_id, self.host))
        logger.debug(
            "sync provenance of %s v%d: %s%s",
            event.guid,
            event.file.version,
            result.activity_id,
            " (deferred to the outbox)" if result.deferred else "",
        )
