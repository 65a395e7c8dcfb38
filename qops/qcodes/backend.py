"""The QCoDeS sync backend: sources are QCoDeS SQLite databases.

It implements the catalog's backend contract (:mod:`qops.catalog.backends`): the change
stamp is the database files' ``stat``, the reader is a read-only :class:`QcodesReader`, and
a run's metadata and data come from :mod:`qops.qcodes.metadata` and
:mod:`qops.qcodes.to_xarray`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationInfo, field_validator

from qops import __version__
from qops.catalog.backends import STORED, SyncBackend
from qops.catalog.models import DatasetMetadata, SyncSource
from qops.catalog.settings import SyncSettings
from qops.qcodes.errors import QcodesDatabaseError
from qops.qcodes.metadata import extract_metadata, parse_snapshot
from qops.qcodes.reader import QcodesReader, RunInfo, RunSummary, file_stamp

if TYPE_CHECKING:
    import xarray as xr


class QCoDeSConfigData(BaseModel):
    """Configuration of a QCoDeS sync source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    database_path: Path = Field(
        description="The QCoDeS SQLite database (.db); must exist and be a QCoDeS database."
    )
    set_up: str = Field(
        min_length=1, description="Name of the experimental set-up (the `set-up` attribute)."
    )
    static_attributes: dict[str, str] = Field(
        default_factory=dict, description="Attributes added to every dataset of this source."
    )

    @field_validator("set_up")
    @classmethod
    def _set_up_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("database_path")
    @classmethod
    def _is_qcodes_database(cls, value: Path, info: ValidationInfo) -> Path:
        path = value.expanduser().resolve()
        if info.context and info.context.get(STORED):
            return path  # checked when the source was created; each read checks it again
        try:
            QcodesReader(path).open().close()
        except QcodesDatabaseError as e:
            raise ValueError(e.reason) from e
        return path


class QcodesRun:
    """One run of a QCoDeS database as the catalog reads it (a ``SourceRun``).

    Args:
        reader: The open reader the run was read with; :meth:`dataset` reads through it.
        info: The run's stored fields.
        rows: Its data marker (highest result row id).
        fingerprint: Digest of its completion flag and metadata.
        metadata: Its catalog metadata.
    """

    def __init__(
        self,
        reader: QcodesReader,
        info: RunInfo,
        rows: int,
        fingerprint: str,
        metadata: DatasetMetadata,
    ) -> None:
        self._reader = reader
        self.info = info
        self.rows = rows
        self.fingerprint = fingerprint
        self.metadata = metadata

    @property
    def guid(self) -> str:
        return self.info.guid

    @property
    def is_completed(self) -> bool:
        return self.info.is_completed

    def dataset(self, up_to_row: int) -> xr.Dataset | xr.DataTree:
        """Return the run's rows up to ``up_to_row`` as QCoDeS reads them.

        QCoDeS's ``to_xarray_dataset()``, or, for a run whose dependents it cannot merge,
        its ``to_xarray_dataset_dict()`` as a tree (:mod:`qops.qcodes.dataset_groups`).

        Raises:
            QcodesDatabaseError: The data cannot be read or laid out.
        """
        # Imported here: xarray and QCoDeS's exporter are for reading data, not for checking
        # a source or discovering its runs.
        from qops.qcodes.dataset_groups import run_dataset

        data = self._reader.parameter_data(self.info, up_to_row=up_to_row)
        return run_dataset(self.info, data, str(self._reader.path))


class QcodesSourceReader:
    """A read-only view of a QCoDeS source for the catalog (a ``SourceReader``).

    Args:
        config: The source's config.
        busy_timeout_s: How long a statement waits for a writer's lock before failing.
    """

    def __init__(self, config: QCoDeSConfigData, busy_timeout_s: float) -> None:
        self.config = config
        self.reader = QcodesReader(config.database_path, busy_timeout_s=busy_timeout_s, reuse=True)

    def __enter__(self) -> Self:
        self.reader.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.reader.close()

    def runs_after(self, watermark: int) -> list[RunSummary]:
        return self.reader.runs_after(watermark)

    def metadata_fingerprint(self) -> str:
        return self.reader.metadata_fingerprint()

    def run_fingerprints(self) -> dict[int, str]:
        return self.reader.run_fingerprints()

    def data_markers(self, run_ids: Sequence[int]) -> dict[int, int]:
        return self.reader.data_markers(run_ids)

    def run(self, run_id: int) -> QcodesRun:
        """Return run ``run_id``: its fields, data marker, fingerprint and metadata.

        Raises:
            RunNotFoundError: No such run.
            RunReadError: Its snapshot or description cannot be decoded.
        """
        config = self.config
        info = self.reader.run_info(run_id)
        rows = self.reader.data_marker(info)
        fingerprint = self.reader.run_fingerprint(run_id)
        metadata = extract_metadata(
            info,
            parse_snapshot(info, str(config.database_path)),
            database_path=config.database_path,
            set_up=config.set_up,
            static_attributes=config.static_attributes,
        )
        return QcodesRun(self.reader, info, rows, fingerprint, metadata)


class QCoDeSBackend(SyncBackend):
    """Syncs every run of a QCoDeS database (read-only, schema versions 2 to 9, never upgraded)."""

    identifier: ClassVar[str] = "qcodes"
    display_name: ClassVar[str] = "QCoDeS SQLite database"
    version: ClassVar[str] = __version__
    reads_with: ClassVar[str] = f"QCoDeS {metadata.version('qcodes')}"
    config_model: ClassVar[type[BaseModel]] = QCoDeSConfigData

    @classmethod
    def change_stamp(cls, config: BaseModel) -> list[int]:
        """Return inode, size and times of the ``.db`` and ``-wal`` files (no open)."""
        return file_stamp(_config(config).database_path)

    @classmethod
    def location(cls, config: BaseModel) -> str:
        """Return the resolved path of the ``.db`` file (symlinks followed)."""
        return str(_config(config).database_path.expanduser().resolve())

    @classmethod
    def open_reader(cls, config: BaseModel, settings: SyncSettings) -> QcodesSourceReader:
        return QcodesSourceReader(_config(config), busy_timeout_s=settings.busy_timeout_s)


SOURCE_BLOCK_TYPE_SLUG = "qcodes-sync-source"
"""The block type slug of ``blocks.sync.QCoDeSSyncSource``, the Prefect copy of a source."""


def source_block_name(source_name: str) -> str:
    """Return the block name of a source (block names are lowercase with dashes)."""
    return re.sub(r"[^a-z0-9-]", "-", source_name.lower())


def source_block_data(source: SyncSource) -> dict[str, JsonValue]:
    """Return the fields of the ``QCoDeSSyncSource`` block that mirrors ``source``."""
    config = source.config
    attributes = config.get("static_attributes") or {}
    assert isinstance(attributes, dict)
    return {
        "source_name": source.name,
        "backend": source.backend,
        "database_path": str(config["database_path"]),
        "set_up": str(config["set_up"]),
        "static_attributes": {str(k): str(v) for k, v in attributes.items()},
        "default_scope": source.default_scope,
    }


def _config(config: BaseModel) -> QCoDeSConfigData:
    if not isinstance(config, QCoDeSConfigData):
        raise TypeError(f"expected a QCoDeSConfigData, got {type(config).__name__}")
    return config
