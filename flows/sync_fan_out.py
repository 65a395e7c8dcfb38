"""The ``sync-qcodes-fan-out`` flow: hands the sync of every source to flow runs of its own.

The scheduled sync of a lab with several workers: each batch of sources becomes a flow run
of the ``sync-qcodes`` deployment (``run_deployment``, linked as a subflow), so every worker
of the pool takes a share and one slow source does not hold the others back. The fan-out
does not wait for them: each child publishes its own report and ends ``Failed`` when one of
its sources could not be read. A source that an unfinished child (of this or an earlier
fan-out) still syncs is left to it, so the schedule never queues a source twice.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from pydantic import BaseModel, Field

from qops.catalog.settings import SyncSettings
from tasks.settings import mongo_settings
from tasks.sync import ensure_sync_limits, list_sources, sources_in_flight

SYNC_DEPLOYMENT = "sync-qcodes/sync-qcodes"
"""The deployment (``flow/deployment``) each batch of sources is run by."""

FAN_OUT_ARTIFACT_KEY = "sync-qcodes-fan-out"


class SyncBatch(BaseModel):
    """One flow run the fan-out started."""

    flow_run_id: str
    flow_run_name: str
    sources: list[str]


class FanOutReport(BaseModel):
    """Result of one ``sync-qcodes-fan-out`` flow run."""

    batches: list[SyncBatch] = Field(default_factory=list)
    in_flight: list[str] = Field(default_factory=list)
    """Sources left to an unfinished flow run started earlier."""


@flow(name="sync-qcodes-fan-out")
def sync_qcodes_fan_out(
    sources_per_run: int = 10,
    mongodb_block: str | None = None,
    storage_block: str | None = None,
    deployment: str = SYNC_DEPLOYMENT,
) -> FanOutReport:
    """Start one ``sync-qcodes`` flow run per batch of ``sources_per_run`` sources.

    Args:
        sources_per_run: Sources one child flow run syncs (one after another); fewer make
            more, shorter flow runs for the workers to share (each costs a process start).
        mongodb_block: A ``qops-mongodb-connection`` block, passed on to the children;
            ``None`` reads ``QOPS_*`` (here and on the children's workers).
        storage_block: Passed on to the children (see ``sync-qcodes``).
        deployment: The children's deployment, ``flow/deployment``.

    Returns:
        The flow runs started and their sources; a table artifact shows the same.

    Raises:
        ValueError: ``sources_per_run`` is below 1.
    """
    if sources_per_run < 1:
        raise ValueError(f"sources_per_run must be at least 1, got {sources_per_run}")
    logger = get_run_logger()
    mongo = mongo_settings(mongodb_block)
    names = list_sources(mongo)
    # Created here too, so the children never race to create them.
    ensure_sync_limits(names, SyncSettings())
    busy = set(sources_in_flight(deployment, names))
    due = [name for name in names if name not in busy]
    report = FanOutReport(in_flight=sorted(busy.intersection(names)))
    for start in range(0, len(due), sources_per_run):
        batch = due[start : start + sources_per_run]
        child: FlowRun = run_deployment(  # type: ignore[assignment]  # sync here
            deployment,
            parameters={
                "sources": batch,
                "mongodb_block": mongodb_block,
                "storage_block": storage_block,
            },
            flow_run_name=f"sync-{batch[0]}" + (f"-and-{len(batch) - 1}" if len(batch) > 1 else ""),
            timeout=0,  # started, not awaited: the workers run the children
            as_subflow=True,
        )
        report.batches.append(
            SyncBatch(flow_run_id=str(child.id), flow_run_name=child.name, sources=batch)
        )
    logger.info(
        "%d sources in %d flow runs; %d still synced by earlier flow runs",
        len(due),
        len(report.batches),
        len(report.in_flight),
    )
    rows = [{"flow_run": b.flow_run_name, "sources": ", ".join(b.sources)} for b in report.batches]
    rows += [{"flow_run": "(earlier, unfinished)", "sources": s} for s in report.in_flight]
    create_table_artifact(
        table=rows or [{"flow_run": "", "sources": "no sources"}],
        key=FAN_OUT_ARTIFACT_KEY,
        description=f"QCoDeS sync fan-out: {len(due)} sources in {len(report.batches)} flow runs",
    )
    return report
