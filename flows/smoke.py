"""The smoke flow: proves that Prefect, the qops layers and MongoDB work together."""

from __future__ import annotations

from prefect import flow, get_run_logger

from tasks.settings import mongo_settings
from tasks.smoke import record_smoke_run


@flow(name="smoke", log_prints=False)
def smoke(mongodb_block: str | None = None) -> int:
    """Record one smoke run in MongoDB; return how many smoke runs are recorded.

    Args:
        mongodb_block: Name of a ``qops-mongodb-connection`` block; ``None`` reads ``QOPS_*``.
    """
    settings = mongo_settings(mongodb_block)
    count = record_smoke_run(settings)
    get_run_logger().info("smoke run recorded; %d recorded in all", count)
    return count
