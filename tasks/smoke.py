"""The smoke task: one write and one read through the configured MongoDB."""

from __future__ import annotations

from prefect import task
from prefect.runtime import flow_run

from qops.config import MongoSettings
from qops.mongo import database
from qops.timeutil import utc_now


@task(name="record-smoke-run", retries=2, retry_delay_seconds=[1, 3], timeout_seconds=60)
def record_smoke_run(settings: MongoSettings) -> int:
    """Record this flow run in ``smoke_runs`` and return how many are recorded."""
    db = database(settings)
    run_id = str(flow_run.get_id() or "local")
    db.smoke_runs.update_one(
        {"_id": run_id}, {"$setOnInsert": {"recorded_at": utc_now()}}, upsert=True
    )
    return db.smoke_runs.count_documents({})
