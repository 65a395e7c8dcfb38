"""The MongoDB connection block."""

from __future__ import annotations

from pathlib import Path

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from qops.config import MongoSettings, QopsSettings


class MongoDBConnection(Block):
    """Where qops keeps its records; mirrors :class:`qops.config.MongoSettings`.

    Leave ``url`` empty to use the embedded server of the worker's data directory.
    """

    _block_type_name = "qops MongoDB Connection"
    _block_type_slug = "qops-mongodb-connection"
    _description = "MongoDB server and database that qops flows read and write."

    url: SecretStr | None = Field(
        default=None,
        description="mongodb:// or mongodb+srv:// URL; empty for the embedded server.",
    )
    database: str = Field(default="qops", min_length=1, description="Database name.")
    timeout_s: float = Field(
        default=3.0, gt=0, description="Seconds to wait for the server to answer."
    )
    data_dir: str | None = Field(
        default=None,
        description="qops data directory of the worker (default: its QOPS_DATA_DIR or per user).",
    )

    def to_settings(self) -> MongoSettings:
        """Return the settings this block describes."""
        # Without a data directory of its own the block leaves it to the worker's settings
        # (QOPS_DATA_DIR, else the per-user default), where it is defined.
        return MongoSettings(
            mongodb_url=self.url,
            mongodb_db=self.database,
            mongodb_timeout_s=self.timeout_s,
            data_dir=Path(self.data_dir) if self.data_dir else QopsSettings().data_dir,
        )
