"""The ``sync-qcodes`` flow: syncs the runs of QCoDeS sources into the dataset catalog."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field

from qops.catalog.service import (
    NOTHING_TO_DO_ROW,
    Discovery,
    RunOutcome,
    sources_failed_message,
    summary_artifact_key,
    summary_line,
    summary_rows,
)
from qops.catalog.settings import SyncSettings
from qops.config import MongoSettings
from qops.console.settings import ConsoleSettings
from qops.errors import QopsError
from tasks.settings import mongo_settings
from tasks.sync import discover_runs, ensure_sync_limits, list_sources, source_slot, sync_run


class SourceReport(BaseModel):
    """What one flow run did for one source."""

    source: str
    discovered_new: int = 0
    outcomes: list[RunOutcome] = Field(default_factory=list)
    error: str | None = None

    def count(self, action: str) -> int:
        """Number of runs with this outcome (``new``, ``updated``, ``live``, ``failed``, ...)."""
        return sum(1 for o in self.outcomes if o.action == action)


class SyncReport(BaseModel):
    """Result of one ``sync-qcodes`` flow run."""

    sources: list[SourceReport]
    artifact_id: str | None = None
    """Id of the table artifact this flow run published."""


class SourcesFailedError(QopsError):
    """Sources of a ``sync-qcodes`` flow run could not be synced (the others were).

    Raised at the end of the flow run, after its artifact is published, so the flow run
    ends ``Failed`` while every other source is synced.

    Args:
        report: What the flow run did, every source included.
    """

    def __init__(self, report: SyncReport) -> None:
        self.report = report
        self.failed = {s.source: s.error or "" for s in report.sources if s.error}
        super().__init__(sources_failed_message(self.failed))

    def __reduce__(self) -> tuple[type[SourcesFailedError], tuple[SyncReport]]:
        # Rebuilt from its report when Prefect hands the failed state's exception back.
        return (type(self), (self.report,))


def _publish(report: SyncReport, console_url: str | None) -> str:
    rows = [
        row
        for s in report.sources
        for row in summary_rows(s.source, s.outcomes, s.error, console_url)
    ]
    summary = "; ".join(
        f"{s.source}: discovery failed" if s.error else summary_line(s.source, s.outcomes)
        for s in report.sources
    )
    artifact_id = create_table_artifact(
        table=rows or [NOTHING_TO_DO_ROW],
        key=summary_artifact_key([s.source for s in report.sources] or ["none"]),
        description=f"QCoDeS sync: {summary or 'no sources'}",
    )
    return str(artifact_id)


@flow(name="sync-qcodes")
def sync_qcodes(
    source_name: str | None = None,
    mongodb_block: str | None = None,
    storage_block: str | None = None,
    sources: list[str] | None = None,
) -> SyncReport:
    """Sync new, running and changed runs of one source, of some, or of every one.

    At most ``QOPS_SYNC_CONCURRENCY`` runs are synced at once in this flow run (read when
    it starts), and at most ``qops-sync-disk`` (a Prefect global concurrency limit,
    ``QOPS_SYNC_MACHINE_CONCURRENCY`` when created) by every flow run together: reading is
    I/O and numpy bound, and the machine that writes the measurements must keep its share
    of the disk. Each source is synced while its one-slot limit ``qops-sync-source-<name>``
    is held, so two flow runs never sync one source at once; a source held longer than
    ``QOPS_SYNC_SOURCE_WAIT_S`` is reported as failed. The scheduled
    ``sync-qcodes-fan-out`` flow starts one of these per batch of sources.

    Args:
        source_name: A registered sync source; ``None`` (and no ``sources``) syncs them all.
        mongodb_block: A ``qops-mongodb-connection`` block; ``None`` reads ``QOPS_*``.
        storage_block: A writable filesystem block for the HDF5 files; ``None`` is a
            ``LocalFileSystem`` on the data directory.
        sources: Registered sync sources, synced one after another (with ``source_name``
            too, that one first).

    Returns:
        Per source, what happened to each run. A table artifact shows the same.

    Raises:
        SourcesFailedError: A source could not be read at all (its discovery failed),
            raised after every other source was synced and the artifact published; its
            ``report`` holds what the flow run did.
    """
    mongo = mongo_settings(mongodb_block)
    sync = SyncSettings()
    console_url = ConsoleSettings().console_url
    if source_name or sources:
        names = list(dict.fromkeys([*([source_name] if source_name else []), *(sources or [])]))
    else:
        names = list_sources(mongo)
    ensure_sync_limits(names, sync)
    # The flow's own task runner is sized when the flow is decorated (at import); this one
    # is sized from the settings of this flow run and bounds every sync-run task in it.
    with ThreadPoolTaskRunner[RunOutcome](max_workers=sync.concurrency) as runner:
        reports = [_sync_source(runner, name, mongo, sync, storage_block) for name in names]
    result = SyncReport(sources=reports)
    result = result.model_copy(update={"artifact_id": _publish(result, console_url)})
    if any(s.error for s in result.sources):
        raise SourcesFailedError(result)
    return result


def _sync_source(
    runner: ThreadPoolTaskRunner[RunOutcome],
    name: str,
    mongo: MongoSettings,
    sync: SyncSettings,
    storage_block: str | None,
) -> SourceReport:
    try:
        with source_slot(name, sync):
            return _sync_held_source(runner, name, mongo, sync, storage_block)
    except TimeoutError:
        error = f"another flow run held the source for {sync.source_wait_s:g} s"
        get_run_logger().error("source %s: %s", name, error)
        return SourceReport(source=name, error=error)


def _sync_held_source(
    runner: ThreadPoolTaskRunner[RunOutcome],
    name: str,
    mongo: MongoSettings,
    sync: SyncSettings,
    storage_block: str | None,
) -> SourceReport:
    logger = get_run_logger()
    discovered = discover_runs(name, mongo, sync, return_state=True)
    discovery = discovered.result(raise_on_failure=False)
    if not isinstance(discovery, Discovery):
        logger.error("source %s: discovery failed: %s", name, discovery)
        return SourceReport(source=name, error=str(discovery))
    futures: list[PrefectFuture[RunOutcome]] = [
        runner.submit(
            sync_run,
            {
                "source_name": name,
                "run_id": run_id,
                "mongo": mongo,
                "sync": sync,
                "storage_block": storage_block,
            },
        )
        for run_id in discovery.run_ids
    ]
    outcomes = []
    for run_id, future in zip(discovery.run_ids, futures, strict=True):
        future.wait()
        result = future.state.result(raise_on_failure=False)
        if isinstance(result, RunOutcome):
            outcomes.append(result)
        else:
            outcomes.append(
                RunOutcome(source=name, run_id=run_id, action="failed", error=str(result))
            )
    report = SourceReport(source=name, discovered_new=discovery.new, outcomes=outcomes)
    logger.info("source %s", summary_line(name, outcomes))
    return report
