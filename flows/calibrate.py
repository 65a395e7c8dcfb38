"""The ``calibrate`` flow: calibrate a (simulated) chip, recording provenance.

Steps run in dependency order; within a step all qubits (or pairs) run concurrently. A step
that fails on a qubit skips that qubit's later steps (and the pairs it belongs to); the other
qubits go on. While the flow runs, the chip is marked CALIBRATING for its 2300 backend, and
only one calibration of a chip runs at a time.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run

from qops.calibration.graph import StepName
from qops.calibration.instruments import measurement_context
from qops.calibration.plan import (
    DEFAULT_SEED,
    ChipSpec,
    StepOutcome,
    StepResult,
    blocking_step,
    ordered_steps,
    plan_run,
    targets_of,
)
from qops.calibration.recording import CalibrationOutcome
from qops.calibration.report import (
    CalibrationReport,
    artifact_key,
    change_rows,
    lineage_markdown,
)
from qops.calibration.session import calibration_session
from qops.console.settings import ConsoleSettings
from qops.provenance.config import ProvenanceSettings
from tasks.calibration import CALIBRATION_TASKS
from tasks.settings import mongo_settings


@flow(name="calibrate")
def calibrate(
    qubits: list[str] | None = None,
    project_id: str | None = None,
    chip_id: str | None = None,
    backend_config: str | None = None,
    database_path: str | None = None,
    seed: int = DEFAULT_SEED,
    wait_s: float = 0.0,
    mongodb_block: str | None = None,
) -> CalibrationReport:
    """Calibrate a chip and record every fitted value as a provenance-tracked version.

    Args:
        qubits: Qubits to calibrate (e.g. ``["Q0", "Q1"]``); default all. Coupled pairs
            whose two qubits are selected get ``CheckCZ``.
        project_id: Provenance project; default ``QOPS_PROJECT_ID``.
        chip_id: The chip; default the backend configuration's, else ``QOPS_CHIP_ID``.
        backend_config: Backend YAML giving the chip's qubits and topology.
        database_path: QCoDeS database the measurements go to; default
            ``<data_dir>/calibration/<chip_id>.db``.
        seed: Seed of the simulated chip.
        wait_s: How long to wait if another calibration of the chip runs, or a 2200 session
            is initialized on it (0: refuse).
        mongodb_block: Name of a ``qops-mongodb-connection`` block; ``None`` reads ``QOPS_*``.

    Raises:
        UnknownQubitError: A requested qubit is not on the chip.
        ChipBusyError: Another calibration of the chip kept running for ``wait_s``.
        ChipInUseError: A 2200 session stayed initialized on the chip for ``wait_s``.
        MeasurementDatabaseError: The QCoDeS database cannot be written.
    """
    logger = get_run_logger()
    settings = mongo_settings(mongodb_block)
    # Read first: a malformed QOPS_CONSOLE_URL fails the run before the chip is measured.
    console_url = ConsoleSettings().console_url
    provenance = ProvenanceSettings()
    target = plan_run(
        settings.data_dir,
        provenance.project_id,
        provenance.chip_id,
        project_id=project_id,
        chip_id=chip_id,
        backend_config=backend_config,
        seed=seed,
        qubits=qubits,
        database_path=database_path,
    )
    project, spec, database = target.project_id, target.spec, target.database
    selected, pairs = target.qubits, target.pairs
    execution_id = str(flow_run.get_id() or f"local-{spec.chip_id}")

    # Not a task: the lease must span every step of the run (the chip is CALIBRATING, and no
    # other calibration of it starts, until the last version is written). It is renewed by a
    # thread of this process and released on leaving the block, also when a step raises; a
    # task returns before the steps run, and a lease taken in one task and released in another
    # would stay behind until it expires whenever the flow fails between them.
    with calibration_session(settings, spec, project, execution_id, wait_s) as session:
        # Fail fast, naming the path, if the measurement database cannot be written.
        measurement_context(spec, session.epoch, database, execution_id)
        logger.info(
            "calibrating %s (%s, pairs %s) at epoch %d into %s",
            spec.chip_id,
            ", ".join(selected),
            ", ".join(pairs) or "none",
            session.epoch,
            database,
        )
        results = _run_steps(spec, session.epoch, selected, pairs, database, execution_id, project)

    report = session.report(selected, pairs, database, list(results.values()))
    key = artifact_key(report)
    create_table_artifact(
        key=f"{key}-changes",
        table=change_rows(report.changes, console_url),
        description=f"Parameters changed by calibration {report.execution_id} of {report.chip_id}",
    )
    create_markdown_artifact(
        key=f"{key}-lineage",
        markdown=lineage_markdown(report, console_url),
        description=f"Lineage summary of calibration {report.execution_id}",
    )
    for failed in report.failed:
        logger.warning("%s on %s failed: %s", failed.step, failed.target, failed.reason)
    return report


def _run_steps(
    spec: ChipSpec,
    epoch: int,
    qubits: list[str],
    pairs: list[str],
    database: Path,
    execution_id: str,
    project_id: str,
) -> dict[tuple[StepName, str], StepResult]:
    results: dict[tuple[StepName, str], StepResult] = {}
    for step in ordered_steps():
        task = CALIBRATION_TASKS[step.name]
        futures: dict[str, PrefectFuture[CalibrationOutcome]] = {}
        for target in targets_of(step, qubits, pairs):
            blocker = blocking_step(step, target, results)
            if blocker is not None:
                results[(step.name, target)] = StepResult(
                    step=step.name,
                    target=target,
                    outcome=StepOutcome.SKIPPED,
                    reason=f"{blocker.step} on {blocker.target} {blocker.outcome.value}",
                )
                continue
            futures[target] = task.submit(
                qid=target,
                chip=spec,
                epoch=epoch,
                database_path=str(database),
                execution_id=execution_id,
                project_id=project_id,
                chip_id=spec.chip_id,
            )
        for target, future in futures.items():
            future.wait()
            if future.state.is_completed():
                outcome = future.result()
                results[(step.name, target)] = StepResult(
                    step=step.name,
                    target=target,
                    outcome=StepOutcome.COMPLETED,
                    versions=outcome.versions,
                    used={key: use.version for key, use in outcome.inputs.items()},
                )
            else:
                results[(step.name, target)] = StepResult(
                    step=step.name,
                    target=target,
                    outcome=StepOutcome.FAILED,
                    reason=_failure_reason(future),
                )
    return results


def _failure_reason(future: PrefectFuture[CalibrationOutcome]) -> str:
    """The exception a failed task run raised, as one line."""
    try:
        future.result()
    except Exception as e:  # the task's own failure, reported, not handled
        return f"{type(e).__name__}: {e}"
    return f"ended {future.state.type.value}"
