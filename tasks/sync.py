"""Tasks of the sync: listing sources, discovery of a source and the sync of one run.

Also the Prefect global concurrency limits that hold the sync across flow runs and workers:
``qops-sync-source-<name>`` (one slot: a source is synced by one flow run at a time) and
``qops-sync-disk`` (the runs synced at once on the machine, whatever the number of workers).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from prefect import Task, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import State, StateType, TaskRun
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists
from pymongo.errors import PyMongoError

from qops.catalog.service import Discovery, RunOutcome, SyncService
from qops.catalog.settings import SyncSettings
from qops.catalog.sources import SyncSources
from qops.config import MongoSettings
from qops.mongo import database
from qops.sync_provenance import SyncProvenance
from tasks.storage import file_store

MONGO_RETRY_DELAYS_S: list[float] = [2, 5, 10, 20]
"""Delays between the attempts of a task that MongoDB (or the Prefect API) failed: a
restart or a replica set election may keep the server away for tens of seconds (these add
up to 37 s, each attempt waiting up to ``mongodb_timeout_s`` for the server besides)."""


def _transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry only when MongoDB or the Prefect API failed: run-level errors are recorded,
    not raised.

    A qops error raised from a pymongo error (``MongoUnavailableError``) counts too, and so
    does a Prefect API that cannot be reached (a restarting server, while the task takes
    its concurrency slot).
    """
    error: BaseException | None = state.result(raise_on_failure=False)
    while isinstance(error, BaseException):
        if isinstance(error, PyMongoError | httpx.TransportError):
            return True
        error = error.__cause__
    return False


@task(
    name="list-sources",
    retries=len(MONGO_RETRY_DELAYS_S),
    retry_delay_seconds=MONGO_RETRY_DELAYS_S,
    retry_condition_fn=_transient,
    timeout_seconds=60,
)
def list_sources(mongo: MongoSettings) -> list[str]:
    """Return the names of every registered sync source, sorted."""
    return [source.name for source in SyncSources.list(settings=mongo)]


@task(
    name="discover-runs",
    retries=len(MONGO_RETRY_DELAYS_S),
    retry_delay_seconds=MONGO_RETRY_DELAYS_S,
    retry_condition_fn=_transient,
    timeout_seconds=120,
    task_run_name="discover-runs-{source_name}",
)
def discover_runs(source_name: str, mongo: MongoSettings, sync: SyncSettings) -> Discovery:
    """Track new and changed runs of the source; return the runs due for work."""
    service = SyncService(database(mongo), file_store(None, mongo.data_dir), sync)
    service.ensure_indexes()
    return service.discover(source_name)


SOURCE_LIMIT_PREFIX = "qops-sync-source-"
"""Prefix of the one-slot global concurrency limit of each source."""

DISK_LIMIT = "qops-sync-disk"
"""The global concurrency limit every sync-run task takes a slot of."""

LEASE_S = 60.0
"""Lease of a held slot (Prefect's minimum): a crashed holder frees it within this time."""


def source_limit_name(source_name: str) -> str:
    """The name of the source's one-slot global concurrency limit."""
    return f"{SOURCE_LIMIT_PREFIX}{source_name}"


@task(name="ensure-sync-limits", retries=2, retry_delay_seconds=[1, 5], timeout_seconds=120)
def ensure_sync_limits(source_names: list[str], sync: SyncSettings) -> list[str]:
    """Create the sync's global concurrency limits that are missing; return their names.

    A limit that exists is left as it is: an operator may have changed ``qops-sync-disk``
    (``prefect gcl update qops-sync-disk --limit N``).
    """
    wanted = {source_limit_name(name): 1 for name in source_names}
    wanted[DISK_LIMIT] = sync.machine_concurrency
    with get_client(sync_client=True) as client:
        existing: set[str] = set()
        offset = 0
        while True:
            page = client.read_global_concurrency_limits(limit=200, offset=offset)
            existing.update(limit.name for limit in page)
            if len(page) < 200:
                break
            offset += len(page)
        created = []
        for name, slots in wanted.items():
            if name in existing:
                continue
            try:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=slots)
                )
            except ObjectAlreadyExists:
                continue  # another flow run created it a moment ago
            created.append(name)
    return created


@contextmanager
def source_slot(source_name: str, sync: SyncSettings) -> Iterator[None]:
    """Hold the source's only slot while the block runs (wait up to ``source_wait_s``).

    Raises:
        TimeoutError: Another flow run held the source for ``source_wait_s``.
        prefect.concurrency.ConcurrencySlotAcquisitionError: The limit does not exist
            (:func:`ensure_sync_limits` creates it).
    """
    with concurrency(
        source_limit_name(source_name),
        occupy=1,
        timeout_seconds=sync.source_wait_s,
        lease_duration=LEASE_S,
        strict=True,
        # A Prefect server restarting must not stop a sync that holds its slot: the lease
        # stays valid until it expires, and the renewal is tried again.
        raise_on_lease_renewal_failure=False,
    ):
        yield


_ACTIVE = [
    StateType.SCHEDULED,
    StateType.PENDING,
    StateType.RUNNING,
    StateType.PAUSED,
    StateType.CANCELLING,
]


@task(name="sources-in-flight", retries=2, retry_delay_seconds=[1, 5], timeout_seconds=60)
def sources_in_flight(deployment: str, every_source: list[str]) -> list[str]:
    """Sources that an unfinished flow run of ``deployment`` (``flow/deployment``) syncs."""
    flow_name, _, deployment_name = deployment.partition("/")
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment_name])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=_ACTIVE))
            ),
        )
    busy: set[str] = set()
    for run in runs:
        sources = run.parameters.get("sources")
        single = run.parameters.get("source_name")
        if isinstance(sources, list):
            busy.update(str(s) for s in sources)
        elif isinstance(single, str):
            busy.add(single)
        else:
            busy.update(every_source)  # a run of every source
    return sorted(busy)


@task(
    name="sync-run",
    retries=len(MONGO_RETRY_DELAYS_S),
    retry_delay_seconds=MONGO_RETRY_DELAYS_S,
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
    """Sync one run into the catalog; a failure of the run itself is returned, not raised.

    Each new file version is recorded in provenance (``qops.sync_provenance``), in the
    project of ``QOPS_PROJECT_ID``.

    The run takes a slot of ``qops-sync-disk`` while it reads and writes: the limit bounds
    the runs synced at once by every flow run and worker of the lab together.
    """
    with concurrency(
        DISK_LIMIT,
        occupy=1,
        lease_duration=LEASE_S,
        strict=True,
        raise_on_lease_renewal_failure=False,
    ):
        service = SyncService(
            database(mongo),
            file_store(storage_block, mongo.data_dir),
            sync,
            SyncProvenance.mongo(mongo),
        )
        return service.sync_run(source_name, run_id)
