"""Settings of the sync (environment prefix ``QOPS_SYNC_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SyncSettings(BaseSettings):
    """How the sync retries, detects dead writers and runs in parallel.

    Environment variables: ``QOPS_SYNC_RETRY_BASE_S``, ``QOPS_SYNC_RETRY_MAX_S``,
    ``QOPS_SYNC_IDLE_TIMEOUT_S``, ``QOPS_SYNC_CONCURRENCY``, ``QOPS_SYNC_BUSY_TIMEOUT_S``,
    ``QOPS_SYNC_LIVE_WRITE_ALLOWANCE_BYTES``, ``QOPS_SYNC_MACHINE_CONCURRENCY``,
    ``QOPS_SYNC_SOURCE_WAIT_S``.
    """

    model_config = SettingsConfigDict(env_prefix="QOPS_SYNC_", extra="ignore")

    retry_base_s: float = Field(
        default=30.0, gt=0, description="Back-off after a run's first failure, in seconds."
    )
    retry_max_s: float = Field(
        default=3600.0, gt=0, description="Longest back-off between retries, in seconds."
    )
    idle_timeout_s: float = Field(
        default=600.0,
        gt=0,
        description="A run not completed with no new rows for this long (seconds) is abandoned.",
    )
    concurrency: int = Field(default=4, ge=1, description="Runs synced at once.")
    machine_concurrency: int = Field(
        default=4,
        ge=1,
        description=(
            "Runs synced at once by every flow run and worker together, so the machine that "
            "writes the measurements keeps its share of the disk (the initial value of the "
            "Prefect global concurrency limit `qops-sync-disk`, created when missing)."
        ),
    )
    source_wait_s: float = Field(
        default=1800.0,
        gt=0,
        description=(
            "Seconds a flow run waits for a source another flow run is syncing before it "
            "reports the source as failed."
        ),
    )
    live_write_allowance_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=0,
        description=(
            "Bytes a live run's file may be rewritten with on every poll that finds new rows; "
            "beyond them it is rewritten only when it has grown threefold."
        ),
    )
    busy_timeout_s: float = Field(
        default=5.0, gt=0, description="Seconds a read waits for a writer's lock."
    )

    def backoff_s(self, attempts: int) -> float:
        """Return the delay before retry number ``attempts`` (doubling, capped)."""
        return float(min(self.retry_max_s, self.retry_base_s * 2 ** max(attempts - 1, 0)))
