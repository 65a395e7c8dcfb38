"""The QCoDeS sync backend: sources are QCoDeS SQLite databases."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import qcodes
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from qops import __version__
from qops.catalog.backends import STORED, SyncBackend
from qops.qcodes.errors import QcodesDatabaseError
from qops.qcodes.reader import QcodesReader


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


class QCoDeSBackend(SyncBackend):
    """Syncs every run of a QCoDeS database (read-only, schema versions 8 and 9)."""

    identifier: ClassVar[str] = "qcodes"
    display_name: ClassVar[str] = "QCoDeS SQLite database"
    version: ClassVar[str] = __version__
    reads_with: ClassVar[str] = f"QCoDeS {qcodes.__version__}"
    config_model: ClassVar[type[BaseModel]] = QCoDeSConfigData
