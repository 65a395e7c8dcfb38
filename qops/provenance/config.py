"""Settings of the provenance capability (``QOPS_`` environment variables)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ProvenanceSettings(BaseSettings):
    """Defaults for recording and querying provenance.

    Environment variables: ``QOPS_PROJECT_ID``, ``QOPS_CHIP_ID``, ``QOPS_PROVENANCE_USER``.
    """

    model_config = SettingsConfigDict(env_prefix="QOPS_", extra="ignore")

    project_id: str = Field(
        default="default", min_length=1, description="Project that records and queries use."
    )
    chip_id: str = Field(
        default="default",
        min_length=1,
        description="Chip recorded with a task run when the task has no chip_id argument.",
    )
    provenance_user: str | None = Field(
        default=None,
        description="User recorded as the agent of task runs; unset records the system agent.",
    )
