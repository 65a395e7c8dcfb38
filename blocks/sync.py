"""The block of the QCoDeS sync: a sync source, mirroring :class:`QCoDeSConfigData`."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field

from qops.qcodes.backend import SOURCE_BLOCK_TYPE_SLUG, QCoDeSBackend, QCoDeSConfigData


class QCoDeSSyncSource(Block):
    """A QCoDeS database synced into the catalog; mirrors :class:`QCoDeSConfigData`."""

    _block_type_name = "QCoDeSSyncSource"
    _block_type_slug = SOURCE_BLOCK_TYPE_SLUG
    _description = "A QCoDeS SQLite database whose runs qops syncs into its dataset catalog."

    source_name: str = Field(description="Name of the source in the qops registry.")
    backend: str = Field(default="qcodes", description="Sync backend identifier.")
    database_path: str = Field(description="The QCoDeS .db file (opened read-only).")
    set_up: str = Field(description="Name of the experimental set-up.")
    static_attributes: dict[str, str] = Field(
        default_factory=dict, description="Attributes added to every dataset."
    )
    default_scope: str = Field(default="default", description="Scope of the datasets.")

    def to_settings(self) -> QCoDeSConfigData:
        """Return the validated source config this block describes."""
        config = QCoDeSBackend.validate_config(
            self.source_name,
            {
                "database_path": self.database_path,
                "set_up": self.set_up,
                "static_attributes": self.static_attributes,
            },
        )
        assert isinstance(config, QCoDeSConfigData)
        return config


__all__ = ["QCoDeSSyncSource"]
