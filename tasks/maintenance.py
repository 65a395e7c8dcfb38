"""Tasks of the ``maintain`` flow: the chip's health and current versions, and the checks.

``check_step`` measures one check on the simulated chip through QCoDeS
(:func:`qops.maintenance.checks.run_check`) and records it in provenance as an activity of
type ``check`` that used the versions it checked, through the same recorder (and durable
outbox) as the calibration tasks. Recalibrations are the calibration tasks themselves
(``tasks/calibration.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run, task_run

from qops.calibration.graph import StepName
from qops.calibration.instruments import metadata_instrument, simulated_chip
from qops.calibration.measurement import MeasurementContext
from qops.calibration.plan import ChipSpec
from qops.calibration.recording import ProvenanceSink
from qops.config import MongoSettings
from qops.maintenance.checks import CheckResult, check_record, check_values, run_check
from qops.maintenance.health import ChipHealth, HealthService
from qops.maintenance.policy import MaintenancePolicy
from qops.mongo import database
from qops.provenance.config import ProvenanceSettings
from qops.provenance.models import Agent, AgentType, ParameterVersion
from qops.provenance.recorder import ProvenanceRecorder
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import ProvenanceService
from qops.timeutil import utc_now
from tasks.settings import mongo_settings


@task(name="assess-health", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def assess_health(
    settings: MongoSettings,
    policy: MaintenancePolicy,
    chip_id: str,
    project_id: str,
    targets: Sequence[str],
) -> ChipHealth:
    """The chip's health over provenance (stale, out of spec, degrading, missing)."""
    service = ProvenanceService(MongoProvenanceRepository(database(settings)), project_id)
    return HealthService(service, policy).chip_health(chip_id, project_id, list(targets))


@task(name="read-current-versions", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def read_current_versions(
    settings: MongoSettings, chip_id: str, project_id: str
) -> list[ParameterVersion]:
    """The chip's current versions (one query)."""
    return MongoProvenanceRepository(database(settings)).current_versions(project_id, chip_id)


def _agent(settings: ProvenanceSettings) -> Agent:
    if settings.provenance_user:
        return Agent(agent_type=AgentType.USER, name=settings.provenance_user)
    return Agent(agent_type=AgentType.SYSTEM, name=f"prefect:{flow_run.get_flow_name() or 'task'}")


@task(
    name="check-step",
    task_run_name="check-{step}-{target}",
    retries=1,
    retry_delay_seconds=1,
    cache_policy=NO_CACHE,
)
def check_step(
    step: StepName,
    target: str,
    chip: ChipSpec,
    epoch: int,
    database_path: str,
    execution_id: str,
    project_id: str,
    used: dict[str, ParameterVersion],
    policy: MaintenancePolicy,
    mongodb_block: str | None = None,
) -> CheckResult:
    """Check ``step`` on ``target`` at the versions ``used`` and record the check.

    Raises:
        CheckValueError: A recorded value cannot be measured at.
        MeasurementDatabaseError: The QCoDeS database cannot be written.
        OutboxError: MongoDB is unreachable and the outbox cannot be written either.
    """
    settings = mongo_settings(mongodb_block)
    started = utc_now()
    context = MeasurementContext(
        simulated_chip(chip, epoch),
        metadata_instrument(),
        Path(database_path),
        experiment_name=chip.chip_id,
        tags=["check", f"execution:{execution_id}"],
        attributes={"execution_id": execution_id, "chip_id": chip.chip_id, "kind": "check"},
    )
    result = run_check(context, step, target, check_values(step, target, used), policy)
    record = check_record(
        result,
        used,
        project_id=project_id,
        chip_id=chip.chip_id,
        execution_id=execution_id,
        task_id=str(task_run.get_id() or f"{execution_id}-{step}-{target}"),
        agent=_agent(ProvenanceSettings()),
        started_at=started,
    )
    sink = ProvenanceSink.mongo(settings)
    ProvenanceRecorder(sink.repository, sink.outbox).record(record)
    return result
