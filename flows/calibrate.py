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

from qops.backend.state import MongoBackendStateStore, calibrating
from qops.calibration.plan import (
    CalibrationReport,
    ChipSpec,
    StepOutcome,
    StepResult,
    blocking_step,
    changes_between,
    ordered_steps,
    select_targets,
    targets_of,
)
from qops.chip.steps import StepName
from qops.config import MongoSettings
from qops.mongo import connect
from qops.provenance.config import ProvenanceSettings
from qops.provenance.models import ParameterVersion
from qops.provenance.repository import MongoProvenanceRepository
from tasks.calibration import CALIBRATION_TASKS, measurement_context
from tasks.provenance import CalibrationOutcome
from tasks.settings import mongo_settings

DEFAULT_SEED = 1234


def _snapshot(versions: list[ParameterVersion]) -> list[tuple[str, str, float | int | str, str]]:
    return [(v.parameter_name, v.qid, v.value, v.unit) for v in versions]


def _chip_spec(backend_config: str | None, chip_id: str | None, seed: int) -> ChipSpec:
    if backend_config:
        spec = ChipSpec.from_file(Path(backend_config), seed)
        return spec.model_copy(update={"chip_id": chip_id}) if chip_id else spec
    # Without a backend configuration: a two-qubit chip with one coupler.
    return ChipSpec(
        chip_id=chip_id or ProvenanceSettings().chip_id, n_qubits=2, topology=((0, 1),), seed=seed
    )


def _default_database(settings: MongoSettings, chip_id: str) -> Path:
    return settings.data_dir / "calibration" / f"{chip_id}.db"


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
        wait_s: How long to wait if another calibration of the chip runs (0: refuse).
        mongodb_block: Name of a ``qops-mongodb-connection`` block; ``None`` reads ``QOPS_*``.

    Raises:
        UnknownQubitError: A requested qubit is not on the chip.
        ChipBusyError: Another calibration of the chip kept running for ``wait_s``.
        MeasurementDatabaseError: The QCoDeS database cannot be written.
    """
    logger = get_run_logger()
    settings = mongo_settings(mongodb_block)
    project = project_id or ProvenanceSettings().project_id
    spec = _chip_spec(backend_config, chip_id, seed)
    selected, pairs = select_targets(spec, qubits)
    database = Path(database_path) if database_path else _default_database(settings, spec.chip_id)
    execution_id = str(flow_run.get_id() or f"local-{spec.chip_id}")

    client = connect(settings)
    try:
        db = client[settings.mongodb_db]
        repository = MongoProvenanceRepository(db)
        with calibrating(
            MongoBackendStateStore(db),
            spec.chip_id,
            holder=execution_id,
            exclusive=True,
            wait_s=wait_s,
        ):
            before = repository.current_versions(project, spec.chip_id)
            # The simulated chip drifts by one step per recorded version of the chip.
            epoch = max((v.version for v in before), default=0)
            # Fail fast, naming the path, if the measurement database cannot be written.
            measurement_context(spec, epoch, database, execution_id)
            logger.info(
                "calibrating %s (%s, pairs %s) at epoch %d into %s",
                spec.chip_id,
                ", ".join(selected),
                ", ".join(pairs) or "none",
                epoch,
                database,
            )
            results = _run_steps(spec, epoch, selected, pairs, database, execution_id, project)
            after = repository.current_versions(project, spec.chip_id)
    finally:
        client.close()

    report = CalibrationReport(
        execution_id=execution_id,
        project_id=project,
        chip_id=spec.chip_id,
        epoch=epoch,
        database_path=str(database),
        qubits=selected,
        pairs=pairs,
        steps=list(results.values()),
        changes=changes_between(_snapshot(before), _snapshot(after)),
    )
    _publish_artifacts(report)
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


def _fmt(value: float | int | str | None) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def _publish_artifacts(report: CalibrationReport) -> None:
    key = f"calibration-{report.chip_id}".lower().replace("_", "-")
    create_table_artifact(
        key=f"{key}-changes",
        table=[
            {
                "parameter": c.parameter_name,
                "qid": c.qid,
                "before": _fmt(c.before),
                "after": _fmt(c.after),
                "unit": c.unit,
                "delta": _fmt(c.delta),
                "delta %": _fmt(c.delta_percent),
            }
            for c in report.changes
        ],
        description=f"Parameters changed by calibration {report.execution_id} of {report.chip_id}",
    )
    lines = [
        f"# Calibration of {report.chip_id}",
        "",
        f"Execution `{report.execution_id}`, project `{report.project_id}`, epoch {report.epoch}.",
        "",
        "| step | target | outcome | new versions | used / reason |",
        "|---|---|---|---|---|",
    ]
    for s in report.steps:
        made = ", ".join(f"{n} v{v}" for n, v in s.versions.items())
        used = ", ".join(f"{n} v{v}" for n, v in s.used.items()) or s.reason
        lines.append(f"| {s.step} | {s.target} | {s.outcome.value} | {made} | {used} |")
    lines += [
        "",
        "Each new version `wasGeneratedBy` its step's activity and `wasDerivedFrom` the input "
        "versions the step used and the previous version of the same parameter: "
        "`qops provenance lineage <entity_id>` shows the chain.",
    ]
    create_markdown_artifact(
        key=f"{key}-lineage",
        markdown="\n".join(lines),
        description=f"Lineage summary of calibration {report.execution_id}",
    )
