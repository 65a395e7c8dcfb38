"""Provenance for runs synced before the sync recorded it (an upgraded lab)."""

from __future__ import annotations

import logging

from pydantic import BaseModel, Field
from pymongo.database import Database

from qops.catalog.models import DatasetRecord, SyncItem
from qops.catalog.repository import DatasetRepository, SyncItemRepository
from qops.catalog.service import FileWritten, SyncService
from qops.errors import QopsError
from qops.mongo import Document
from qops.provenance.ids import dataset_file_entity_id
from qops.provenance.repository import MongoProvenanceRepository
from qops.sync_provenance.observer import SyncProvenance

logger = logging.getLogger(__name__)

BATCH = 500
"""Catalog records whose file versions are looked up in provenance per query."""


class BackfillReport(BaseModel):
    """What a backfill did."""

    recorded: int = 0
    """File versions whose sync was recorded now."""
    already: int = 0
    """File versions already recorded (left as they are)."""
    skipped: dict[str, str] = Field(default_factory=dict)
    """Datasets (uuid) left out, with why."""


def backfill(
    sync: SyncService, observer: SyncProvenance, source: str | None = None
) -> BackfillReport:
    """Record the sync of every catalog dataset's current file version not yet recorded.

    The record is the one a sync writes (same ids, so a later sync of the run derives its
    next file version from this one); its times are the record's ``synced_at``. Earlier
    file versions are not on disk any more and stay unrecorded. Idempotent.

    Args:
        sync: The catalog's sync service (its database, sources and backends).
        observer: Where the records go.
        source: Only this source's datasets; ``None``: every source.
    """
    db: Database[Document] = sync.db
    query: Document = {}
    if source is not None:
        query["source"] = {"$eq": source}
    report = BackfillReport()
    batch: list[DatasetRecord] = []
    datasets = DatasetRepository(db).collection.find(query).sort("_id", 1)
    for document in datasets:
        document.pop("_id", None)
        record = DatasetRecord.model_validate(document)
        if not record.files:
            continue  # nothing synced yet (a run that failed before its first file)
        batch.append(record)
        if len(batch) == BATCH:
            _backfill_batch(sync, observer, batch, report)
            batch = []
    if batch:
        _backfill_batch(sync, observer, batch, report)
    return report


def _backfill_batch(
    sync: SyncService,
    observer: SyncProvenance,
    records: list[DatasetRecord],
    report: BackfillReport,
) -> None:
    ids = {r.uuid: dataset_file_entity_id(r.uuid, r.files[-1].version) for r in records}
    provenance = MongoProvenanceRepository(sync.db)
    known = provenance.other_entities_by_id(observer.project_id, list(ids.values()))
    items = SyncItemRepository(sync.db).collection
    locations: dict[str, str | None] = {}
    for record in records:
        if ids[record.uuid] in known:
            report.already += 1
            continue
        found = items.find_one({"source": {"$eq": record.source}, "guid": {"$eq": record.alt_uid}})
        if found is None:
            report.skipped[record.uuid] = f"no sync state of run {record.alt_uid}"
            continue
        found.pop("_id", None)
        item = SyncItem.model_validate(found)
        if record.source not in locations:
            try:
                _, backend, config = sync.source(record.source)
                locations[record.source] = backend.location(config)
            except QopsError as e:  # a removed source: its datasets stay in the catalog
                logger.info("source %s of %s: %s", record.source, record.uuid, e)
                locations[record.source] = None
        observer.file_written(
            FileWritten(
                source=record.source,
                location=locations[record.source],
                run_id=item.run_id,
                guid=record.alt_uid,
                name=record.name,
                dataset_uuid=record.uuid,
                file=record.files[-1],
                previous=None,
                started_at=record.synced_at,
                ended_at=record.synced_at,
            )
        )
        report.recorded += 1
