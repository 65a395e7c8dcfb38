"""Tasks of the sync: listing sources, discovery of a source and the sync of one run."""

from __future__ import annotations

from typing import Any

from prefect import Task, task
from prefect.client.schemas.objects import State, TaskRun
from pymongo.errors import PyMongoError

from qops.catalog.service import Discovery, RunOutcome, SyncService
from qops.catalog.settings import SyncSettings
from qops.catalog.sources import SyncSources
from qops.config import MongoSettings
from qops.mongo import database
from tasks.storage import file_store


def _transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry only when MongoDB failed: run-level errors are recorded, not raised."""
    return isinstance(state.result(raise_on_failure=False), PyMongoError)


@task(
    name="list-sources",
    retries=2,
    retry_delay_seconds=[1, 5],
    retry_condition_fn=_transient,
    timeout_seconds=60,
)
def list_sources(mongo: MongoSettings) -> list[str]:
    """Return the names of every registered sync source, sorted."""
    return [source.name for source in SyncSources.list(settings=mongo)]


@task(
    name="discover-runs",
    retries=2,
    retry_delay_seconds=[1, 5],
    retry_condition_fn=_transient,
    timeout_seconds=120,
    task_run_name="discover-runs-{source_name}",
)
def discover_runs(source_name: str, mongo: MongoSettings, sync: SyncSettings) -> Discovery:
    """Track new and changed runs of the source; return the runs due for work."""
    service = SyncService(database(mongo), file_store(None, mongo.data_dir), sync)
    service.ensure_indexes()
    return service.discover(source_name)


@task(
    name="sync-run",
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=_transient,
    # No timeout_seconds: runs go to worker threads, where Prefect cannot interrupt them and
    # warns on every run; a stuck read is bounded by the reader's SQLite busy timeout.
    task_run_name="sync-run-{source_name}-{run_id}",
)
def sync_run(
    source_name: str,
    run_id: int,
    mongo: MongoSettings,
    sync: SyncSettings,
    storage_block: str | None = None,
) -> RunOutcome:
    """Sync one run into the catalog; a failure of the run itself is returned, not raised."""
    service = SyncService(database(mongo), file_store(storage_block, mongo.data_dir), sync)
    return service.sync_run(source_name, run_id)
