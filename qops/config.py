"""Settings of qops, read from the environment with the ``QOPS_`` prefix.

One settings model per component; each is passed explicitly to what needs it and is
mirrored by a Prefect block in ``blocks/`` with ``to_settings()``.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """Return the per-user data directory qops uses when ``QOPS_DATA_DIR`` is unset."""
    return Path(platformdirs.user_data_dir("qops", appauthor=False))


class QopsSettings(BaseSettings):
    """Settings shared by every qops component.

    Environment variables: ``QOPS_DATA_DIR``.
    """

    model_config = SettingsConfigDict(env_prefix="QOPS_", extra="ignore")

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Directory for qops's own state: embedded MongoDB, HDF5 files, outbox.",
    )


class MongoSettings(QopsSettings):
    """Where qops keeps its records.

    Environment variables: ``QOPS_MONGODB_URL`` (unset: the embedded server, whose files
    live in ``<data_dir>/mongo``), ``QOPS_MONGODB_DB`` (default ``qops``),
    ``QOPS_MONGODB_TIMEOUT_S``, and ``QOPS_DATA_DIR`` (see :class:`QopsSettings`).
    """

    mongodb_url: SecretStr | None = Field(
        default=None,
        description="mongodb:// or mongodb+srv:// URL; unset means the embedded server.",
    )
    mongodb_db: str = Field(default="qops", min_length=1, description="Database name.")
    mongodb_timeout_s: float = Field(
        default=3.0,
        gt=0,
        description="Server selection timeout in seconds: how long to wait for an answer.",
    )

    @property
    def embedded(self) -> bool:
        """Whether qops runs its own embedded server (no URL configured)."""
        return self.mongodb_url is None or not self.mongodb_url.get_secret_value().strip()
