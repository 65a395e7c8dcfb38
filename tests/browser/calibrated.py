"""Really recorded calibrations for the console's provenance and chip pages.

:func:`record_calibration` runs the whole calibration of a simulated chip the way the
``calibrate`` flow does (every step in dependency order, real QCoDeS runs, fits, provenance
recorded by :class:`~qops.calibration.recording.RecordedCalibration`, the chip's exclusive
CALIBRATING lease), without Prefect: the flow's tasks are the same functions under
``@calibration_task``. Two runs give every parameter versions 1 and 2, so history, lineage
and compare have something to show.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from qops.calibration.graph import CALIBRATION_STEPS, StepName, StepSpec
from qops.calibration.instruments import close_instruments
from qops.calibration.plan import (
    ChipSpec,
    StepOutcome,
    StepResult,
    blocking_step,
    ordered_steps,
    select_targets,
    targets_of,
)
from qops.calibration.recording import (
    CalibrationOutcome,
    ProvenanceSink,
    RecordedCalibration,
    RunIds,
)
from qops.calibration.session import calibration_session
from qops.calibration.steps import step_measurement
from qops.catalog.service import SyncService
from qops.catalog.settings import SyncSettings
from qops.catalog.sources import SyncSources
from qops.config import MongoSettings
from qops.export.store import LocalDirStore
from qops.mongo import EmbeddedServer, connect, database
from qops.provenance.config import ProvenanceSettings
from qops.provenance.models import ActivityStatus, Agent, AgentType, Measured, TaskRecord
from qops.provenance.recorder import ProvenanceRecorder
from qops.provenance.repository import MongoProvenanceRepository
from qops.sync_provenance import SyncProvenance
from qops.timeutil import utc_now

PROJECT = "console"
CHIP = ChipSpec(chip_id="chip-console", n_qubits=2, topology=((0, 1),), seed=20261202)


def _recorded(spec: StepSpec) -> RecordedCalibration:
    """The calibration function of one step, as ``tasks/calibration.py`` builds it."""
    return RecordedCalibration(
        step_measurement(spec.name),
        outputs=spec.outputs,
        inputs=spec.inputs,
        name=spec.name.value,
        task_type=spec.scope.value,
    )


RECORDED = {name: _recorded(spec) for name, spec in CALIBRATION_STEPS.items()}


@dataclass
class Calibration:
    """What one recorded calibration run wrote."""

    execution_id: str
    outcomes: dict[tuple[StepName, str], CalibrationOutcome] = field(default_factory=dict)
    failed: dict[tuple[StepName, str], str] = field(default_factory=dict)

    def entity_id(self, parameter_name: str, qid: str) -> str:
        """The entity id of the version of ``parameter_name`` of ``qid`` it wrote last."""
        found = [
            outcome.entity_ids[parameter_name]
            for (_, target), outcome in self.outcomes.items()
            if target == qid and parameter_name in outcome.entity_ids
        ]
        if not found:
            raise KeyError(f"{parameter_name} of {qid} not written by {self.execution_id}")
        return found[-1]


def record_calibration(
    settings: MongoSettings,
    execution_id: str,
    database_path: Path,
    chip: ChipSpec = CHIP,
    project_id: str = PROJECT,
) -> Calibration:
    """Calibrate every qubit and pair of ``chip`` once, recording provenance (no Prefect).

    A step that fails on a target is recorded as failed and skips what depends on it, as
    in the ``calibrate`` flow.
    """
    sink = ProvenanceSink.mongo(settings)
    provenance = ProvenanceSettings(project_id=project_id, chip_id=chip.chip_id)
    qubits, pairs = select_targets(chip, None)
    calibration = Calibration(execution_id)
    results: dict[tuple[StepName, str], StepResult] = {}
    with calibration_session(settings, chip, project_id, execution_id) as session:
        for spec in ordered_steps():
            for target in targets_of(spec, qubits, pairs):
                key = (spec.name, target)
                if blocking_step(spec, target, results) is not None:
                    results[key] = StepResult(
                        step=spec.name, target=target, outcome=StepOutcome.SKIPPED
                    )
                    continue
                ids = RunIds(
                    task_id=f"{spec.name.value}-{target}",
                    flow_run_id=execution_id,
                    flow_name="calibrate",
                    runner="script",
                )
                try:
                    outcome = RECORDED[spec.name].run(
                        ids,
                        sink,
                        provenance,
                        qid=target,
                        chip=chip,
                        epoch=session.epoch,
                        database_path=str(database_path),
                        execution_id=execution_id,
                        project_id=project_id,
                        chip_id=chip.chip_id,
                    )
                except Exception as e:  # recorded as a failed activity; dependents skip
                    calibration.failed[key] = f"{type(e).__name__}: {e}"
                    results[key] = StepResult(
                        step=spec.name, target=target, outcome=StepOutcome.FAILED
                    )
                    continue
                calibration.outcomes[key] = outcome
                results[key] = StepResult(
                    step=spec.name, target=target, outcome=StepOutcome.COMPLETED
                )
    return calibration


MARKUP_PARAMETER = "<img src=x onerror=alert(1)>"
MARKUP_QID = '"><svg onload=alert(2)>'
MARKUP_VALUE = "<script>alert(3)</script>&amp;"
MARKUP_CHIP = 'chip-"><b>markup'
SCOPE = "calibration-lab"


def record_markup(settings: MongoSettings, project_id: str = PROJECT) -> str:
    """Record a version whose parameter name, qid, value and chip are markup; its entity id.

    Lab-controlled text: the pages must show it as text.
    """
    now = utc_now()
    record = TaskRecord(
        project_id=project_id,
        chip_id=MARKUP_CHIP,
        execution_id="markup-run",
        task_id="markup-task",
        task_name="<i>check</i>",
        qid=MARKUP_QID,
        started_at=now,
        ended_at=now,
        status=ActivityStatus.COMPLETED,
        agent=Agent(agent_type=AgentType.USER, name="<u>someone</u>"),
        outputs={MARKUP_PARAMETER: Measured(value=MARKUP_VALUE, unit="<sup>Hz</sup>")},
    )
    result = MongoProvenanceRepository(database(settings)).record(record)
    return result.entity_ids[MARKUP_PARAMETER]


def sync_calibration_runs(
    settings: MongoSettings,
    database_path: Path,
    files: Path,
    project_id: str = PROJECT,
    source_name: str = "calibration-lab",
) -> int:
    """Sync the calibrations' QCoDeS runs into the catalog (scope :data:`SCOPE`), recording
    the sync's provenance in ``project_id``; how many runs."""
    SyncSources.create(
        name=source_name,
        backend_identifier="qcodes",
        config_data={"database_path": str(database_path), "set_up": "simulated-chip"},
        default_scope=SCOPE,
        settings=settings,
    )
    observer = SyncProvenance(ProvenanceRecorder.mongo(settings), project_id)
    service = SyncService(database(settings), LocalDirStore(files), SyncSettings(), observer)
    service.ensure_indexes()
    return len(service.sync_source(source_name))


@dataclass
class CalibratedLab:
    """A database with two recorded calibrations of :data:`CHIP` (``before``, ``after``),
    their QCoDeS runs synced into the catalog, and a version made of markup."""

    settings: MongoSettings
    before: Calibration
    after: Calibration
    markup_entity_id: str
    synced: int


@contextlib.contextmanager
def calibrated_lab(server: EmbeddedServer, data_dir: Path) -> Iterator[CalibratedLab]:
    """A database of its own on ``server`` holding two calibrations; dropped afterwards."""
    name = f"console_{uuid.uuid4().hex[:12]}"
    settings = MongoSettings(mongodb_url=SecretStr(server.url), mongodb_db=name, data_dir=data_dir)
    database_path = data_dir / f"{name}.db"
    try:
        before = record_calibration(settings, "calibration-1", database_path)
        after = record_calibration(settings, "calibration-2", database_path)
        markup = record_markup(settings)
        synced = sync_calibration_runs(settings, database_path, data_dir / f"{name}-files")
        yield CalibratedLab(settings, before, after, markup, synced)
    finally:
        # The process's simulated chip and qh_meta hold QCoDeS instrument names that other
        # tests build their own instruments under.
        close_instruments()
        connect(settings).drop_database(name)
