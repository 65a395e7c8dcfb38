"""Dataset records written the way the sync writes them, for the catalog search tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pymongo.database import Database

from qops.catalog.models import DatasetRecord, DatasetStatus, dataset_uuid
from qops.catalog.repository import DatasetRepository
from qops.mongo import Document

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def record(
    index: int,
    *,
    name: str | None = None,
    description: str = "",
    collected: datetime | bool | None = True,
    tags: list[str] | None = None,
    attributes: dict[str, str] | None = None,
    ranking: int = 0,
    scope: str = "scope-1",
    source: str = "lab",
    status: DatasetStatus = DatasetStatus.COMPLETE,
) -> DatasetRecord:
    """A record; ``collected=True`` means ``T0 + index hours``."""
    when = T0 + timedelta(hours=index) if collected is True else collected or None
    alt_uid = f"guid-{index:04d}"
    return DatasetRecord(
        name=name or f"run {index}",
        description=description,
        collected=when,
        tags=sorted(tags or []),
        attributes=attributes or {},
        ranking=ranking,
        uuid=dataset_uuid(scope, alt_uid),
        alt_uid=alt_uid,
        scope=scope,
        source=source,
        status=status,
        synced_at=T0,
    )


def save(db: Database[Document], *records: DatasetRecord) -> list[DatasetRecord]:
    repository = DatasetRepository(db)
    for item in records:
        repository.save(item)
    return list(records)
