"""The exclusive calibration session of a chip: its lease and its versions before and after.

While a session is open the chip is CALIBRATING for its 2300 backend and no other
calibration of it runs (an exclusive lease in the shared state store); it opens only while
no 2200 session is initialized on the chip (EXECUTING), and while it is open 2300 refuses
``initialize`` (:mod:`qops.backend.locking`). The session reads the
chip's current parameter versions when it opens (the drift epoch of the simulated chip
derives from them) and again when its block completes, so the run's changes can be reported.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from qops.backend.locking import chip_locked
from qops.backend.state import MongoBackendStateStore
from qops.calibration.errors import SessionOpenError
from qops.calibration.plan import ChipSpec, StepResult
from qops.calibration.report import (
    CalibrationChange,
    CalibrationReport,
    changes_between,
    snapshot_of,
)
from qops.config import MongoSettings
from qops.mongo import database
from qops.protocol.messages import BackendState
from qops.provenance.models import ParameterVersion
from qops.provenance.repository import MongoProvenanceRepository


def drift_epoch_of(versions: Sequence[ParameterVersion]) -> int:
    """The simulated chip's drift epoch: one step per recorded version of the chip."""
    return max((v.version for v in versions), default=0)


@dataclass
class CalibrationSession:
    """One open (then closed) calibration session of a chip.

    Attributes:
        chip: The chip calibrated.
        project_id: The provenance project the versions are read in.
        execution_id: Who holds the lease (the flow run id).
        before: The chip's current versions when the session opened.
        after: Its current versions when the block completed; ``None`` until then (and
            after a block that raised).
    """

    chip: ChipSpec
    project_id: str
    execution_id: str
    before: list[ParameterVersion]
    after: list[ParameterVersion] | None = field(default=None)

    @property
    def epoch(self) -> int:
        """The simulated chip's drift epoch for this run (see :func:`drift_epoch_of`)."""
        return drift_epoch_of(self.before)

    def changes(self) -> list[CalibrationChange]:
        """The parameters the run changed, from the versions before and after.

        Raises:
            SessionOpenError: The session's block has not completed.
        """
        if self.after is None:
            raise SessionOpenError(self.chip.chip_id)
        return changes_between(snapshot_of(self.before), snapshot_of(self.after))

    def report(
        self,
        qubits: Sequence[str],
        pairs: Sequence[str],
        database_path: Path,
        steps: Sequence[StepResult],
    ) -> CalibrationReport:
        """The report of the run (see :meth:`changes`).

        Raises:
            SessionOpenError: The session's block has not completed.
        """
        return CalibrationReport(
            execution_id=self.execution_id,
            project_id=self.project_id,
            chip_id=self.chip.chip_id,
            epoch=self.epoch,
            database_path=str(database_path),
            qubits=list(qubits),
            pairs=list(pairs),
            steps=list(steps),
            changes=self.changes(),
        )


@contextmanager
def calibration_session(
    settings: MongoSettings,
    chip: ChipSpec,
    project_id: str,
    execution_id: str,
    wait_s: float = 0.0,
) -> Iterator[CalibrationSession]:
    """Hold the chip's exclusive CALIBRATING lease while the ``with`` block runs.

    Args:
        settings: The MongoDB holding the backend state and the provenance.
        chip: The chip to calibrate.
        project_id: The provenance project to read the versions in.
        execution_id: Who calibrates, recorded as the lease's holder.
        wait_s: How long to wait if another calibration of the chip runs, or a 2200
            session is initialized on it (0: refuse).

    Yields:
        The session, with the versions before; ``after`` is set when the block completes.

    Raises:
        ChipBusyError: Another calibration of the chip kept running for ``wait_s``.
        ChipInUseError: A 2200 session stayed initialized on the chip for ``wait_s``.
        MongoUnavailableError: MongoDB cannot be reached.
    """
    db = database(settings)
    repository = MongoProvenanceRepository(db)
    with chip_locked(
        MongoBackendStateStore(db),
        chip.chip_id,
        BackendState.CALIBRATING,
        holder=execution_id,
        wait_s=wait_s,
    ):
        session = CalibrationSession(
            chip=chip,
            project_id=project_id,
            execution_id=execution_id,
            before=repository.current_versions(project_id, chip.chip_id),
        )
        yield session
        session.after = repository.current_versions(project_id, chip.chip_id)
