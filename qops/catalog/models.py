"""Records of the catalog: datasets, per-run sync state, sync sources."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, JsonValue

_NAMESPACE = uuid.UUID("4f1c7a52-2f0e-5a8e-9a57-3c0f5f0d2b61")


def dataset_uuid(scope: str, alt_uid: str) -> str:
    """Return the deterministic id of the dataset ``alt_uid`` in ``scope``.

    The same run synced again, or found in a copy of its database, maps to the same id.
    """
    return str(uuid.uuid5(_NAMESPACE, f"{scope}\x00{alt_uid}"))


class DatasetStatus(StrEnum):
    """Whether a dataset's data can still grow."""

    LIVE = "live"
    COMPLETE = "complete"
    ABANDONED = "abandoned"
    """The run never completed and no rows arrived within the idle timeout."""


class ItemState(StrEnum):
    """Sync state of one run."""

    PENDING = "pending"
    LIVE = "live"
    SYNCED = "synced"
    ABANDONED = "abandoned"
    FAILED = "failed"


class FileVersion(BaseModel):
    """The current version of a dataset's data file.

    The file has a stable name per run (``<guid>.live.h5`` until the run completes, then
    ``<guid>.h5``) and is replaced in place; ``version`` counts the writes.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    version: int = Field(ge=1)
    location: str
    size: int = Field(ge=0, description="Bytes.")
    md5: str
    rows: int = Field(ge=0, description="Highest result row id the file contains.")
    complete: bool = Field(description="Whether the run was completed when it was written.")
    created: datetime
    fingerprint: str | None = Field(
        default=None,
        description="The run's metadata fingerprint when the file was written (None: unknown).",
    )
    payload: int = Field(
        default=0, ge=0, description="Bytes of the data arrays in the file (0: unknown)."
    )
    written: int = Field(
        default=0,
        ge=0,
        description="Bytes written for the run's files so far, this one included (0: unknown).",
    )


class DatasetMetadata(BaseModel):
    """The searchable metadata of a dataset, as a backend extracts it from a run."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    collected: datetime | None
    tags: list[str]
    attributes: dict[str, str]
    ranking: int


class DatasetRecord(DatasetMetadata):
    """One run in the catalog (collection ``datasets``, ``_id`` = ``uuid``)."""

    model_config = ConfigDict(frozen=False)

    uuid: str
    alt_uid: str
    scope: str
    source: str
    status: DatasetStatus
    synced_at: datetime
    files: list[FileVersion] = Field(default_factory=list)


class SyncItem(BaseModel):
    """Sync state of one run of one source (collection ``sync_items``).

    Unknown stored fields are ignored (pydantic's default), so documents written by older
    versions (e.g. with the former ``file_complete`` field) still read.
    """

    source: str
    run_id: int
    guid: str
    state: ItemState
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    data_rows: int = 0
    meta_fingerprint: str | None = None
    file_version: int = 0
    dataset_uuid: str | None = None
    last_change_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class SyncSource(BaseModel):
    """A registered sync source (collection ``sync_sources``, ``_id`` = ``name``)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    backend: str
    config: dict[str, JsonValue]
    default_scope: str = Field(min_length=1)
    created_at: datetime


class DiscoveryCursor(BaseModel):
    """Where discovery of a source stopped (stored with the source)."""

    watermark: int = Field(default=0, description="Highest run id already tracked.")
    fingerprint: str | None = Field(default=None, description="Digest of all runs' metadata.")
    file_stamp: list[int] = Field(
        default_factory=list, description="Inode, size and times of the .db and -wal files."
    )
