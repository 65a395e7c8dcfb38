"""Where calibration measurements run and how each becomes one QCoDeS run.

:class:`MeasurementContext` holds the chip, the ``qh_meta`` tagging instrument and the QCoDeS
database. A step (:mod:`qops.calibration.steps`) hands it the knobs to set and the traces to
acquire; the context tags the run on the metadata instrument, records a real QCoDeS run
(``Measurement`` in the context's database, with a station snapshot holding the chip and
the ``qh_meta`` instrument), and builds the :class:`MeasurementResult` from the step's
fitted values.

QCoDeS's global configuration is never touched: every call opens its own connection to
the context's database and closes it again. QCoDeS writes are serialised by one lock in
the process (SQLite has one writer, and the shared ``qh_meta`` tags must match the run
they are snapshotted into), so steps of different qubits can be called from several
threads; the fits run outside the lock.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field
from qcodes.dataset import AtomicConnection, Measurement, connect, load_or_create_experiment
from qcodes.instrument import Instrument
from qcodes.parameters import Parameter
from qcodes.station import Station

from qops.calibration.errors import (
    InvalidInputError,
    MeasurementDatabaseError,
    MetadataInstrumentError,
)
from qops.calibration.graph import PARAMETER_UNITS, StepName
from qops.chip.fitting import Estimate
from qops.chip.instrument import SimulatedChip
from qops.chip.physics import FloatArray
from qops.provenance.models import DatasetEntity, Measured
from qops.timeutil import utc_now

logger = logging.getLogger(__name__)

METADATA_INSTRUMENT_NAME = "qh_meta"
"""The name the sync looks the tagging instrument up by in a station snapshot."""

_QCODES_WRITE_LOCK = threading.RLock()


@runtime_checkable
class TagInstrument(Protocol):
    """What the calibration needs of the ``qh_meta`` instrument (``QHMetaData``)."""

    def reset(self) -> None:
        """Clear the dynamic tags and attributes."""

    def add_tags(self, tags: list[str]) -> None:
        """Add dynamic tags."""

    def add_attributes(self, attributes: dict[str, str]) -> None:
        """Add dynamic attributes (key to value)."""


class MeasurementResult(BaseModel):
    """What one calibration measurement found, and where its data is.

    Attributes:
        step: The calibration step.
        target: The qubit id (``Q0``) or the pair id (``Q0-Q1``).
        inputs: The input values the measurement used, by input key.
        outputs: The calibrated parameters, by parameter name, each with its unit (see
            :data:`qops.calibration.graph.PARAMETER_UNITS`; ``""`` if dimensionless) and
            1-sigma error from the fit's covariance matrix.
        diagnostics: Further fitted quantities that are not calibrated parameters (e.g.
            Rabi contrast, Ramsey fringe frequency), by name, in the same form.
        run_id: The QCoDeS run id in ``db_path``.
        guid: The QCoDeS run's GUID.
        db_path: The QCoDeS database the run was written to.
        experiment_name: The QCoDeS experiment the run belongs to.
        measured_at: When the measurement finished (UTC).
        dataset: The run as provenance's raw-measurement entity.
    """

    model_config = ConfigDict(frozen=True)

    step: StepName
    target: str
    inputs: dict[str, float]
    outputs: dict[str, Measured]
    diagnostics: dict[str, Measured] = Field(default_factory=dict)
    run_id: int
    guid: str
    db_path: Path
    experiment_name: str
    measured_at: datetime

    dataset: DatasetEntity
    """The run as provenance's raw-measurement entity (``dataset:{guid}``)."""


class MeasurementContext:
    """Where and with what calibration measurements run.

    Args:
        chip: The chip to measure.
        metadata: The ``qh_meta`` instrument (e.g. ``qops.qcodes_metadata.QHMetaData``);
            each measurement resets its dynamic tags and attributes and sets its own.
        db_path: The QCoDeS database to write runs to; created if missing.
        experiment_name: The QCoDeS experiment the runs belong to (sample name: the chip).
        tags: Extra tags for every run of this context (e.g. an execution id).
        attributes: Extra attributes for every run of this context.

    Raises:
        MetadataInstrumentError: ``metadata`` is not named ``qh_meta`` or cannot tag.
        MeasurementDatabaseError: ``db_path`` cannot be created or written.
    """

    def __init__(
        self,
        chip: SimulatedChip,
        metadata: Instrument,
        db_path: Path,
        experiment_name: str = "calibration",
        tags: Sequence[str] = (),
        attributes: Mapping[str, str] | None = None,
    ) -> None:
        if metadata.name != METADATA_INSTRUMENT_NAME:
            raise MetadataInstrumentError(
                metadata.name, f"it must be named {METADATA_INSTRUMENT_NAME!r} for the sync"
            )
        if not isinstance(metadata, TagInstrument):
            raise MetadataInstrumentError(
                metadata.name, "it needs reset(), add_tags([...]) and add_attributes({...})"
            )
        self.chip = chip
        self.metadata: Instrument = metadata
        self._tagger: TagInstrument = metadata
        self.db_path = Path(db_path)
        self.experiment_name = experiment_name
        self.tags = list(tags)
        self.attributes = dict(attributes or {})
        self.station = Station(chip, metadata, default=False)
        with _QCODES_WRITE_LOCK, _connection(self.db_path):
            pass

    def record(
        self,
        step: StepName,
        target: str,
        inputs: Mapping[str, float],
        knobs: Sequence[Knob],
        traces: Sequence[Trace],
    ) -> Recording:
        """Set the knobs, tag, and record ``traces`` as one QCoDeS run, under the write lock.

        Args:
            step: The step measuring.
            target: The qubit or pair id.
            inputs: The input values the step uses (tagged as ``input.<key>``).
            knobs: Chip parameters to set first.
            traces: What to acquire, in order; all go into the same run.

        Returns:
            The run's id and GUID, and the acquired columns of each trace.

        Raises:
            InvalidInputError: A knob's value is outside its parameter's validator.
            MeasurementDatabaseError: The database cannot be written.
        """
        with _QCODES_WRITE_LOCK:
            for knob in knobs:
                knob.apply(step, target)
            self._tag(step, target, inputs)
            with _connection(self.db_path) as conn:
                try:
                    experiment = load_or_create_experiment(
                        self.experiment_name, sample_name=self.chip.name, conn=conn
                    )
                    measurement = Measurement(exp=experiment, station=self.station, name=step)
                    registered: set[str] = set()
                    for trace in traces:
                        for parameter in trace.setpoints:
                            if parameter.full_name not in registered:
                                measurement.register_parameter(parameter)
                                registered.add(parameter.full_name)
                        for parameter in trace.dependents:
                            measurement.register_parameter(parameter, setpoints=trace.setpoints)
                    data: list[tuple[FloatArray, ...]] = []
                    # QCoDeS prints "Starting experimental run with id: N" to stdout; it is
                    # logged below instead. Swapping sys.stdout is safe under the write lock.
                    with (
                        contextlib.redirect_stdout(io.StringIO()),
                        measurement.run(write_in_background=False) as saver,
                    ):
                        for trace in traces:
                            arrays = trace.acquire(data)
                            columns = (*trace.setpoints, *trace.dependents)
                            saver.add_result(*zip(columns, arrays, strict=True))
                            data.append(arrays)
                    run_id, guid = saver.run_id, saver.dataset.guid
                except (sqlite3.Error, RuntimeError) as e:
                    failure = _database_failure(self.db_path, e)
                    if failure is None:
                        raise
                    raise failure from e
        logger.info("%s on %s recorded as QCoDeS run %d (%s)", step, target, run_id, guid)
        return Recording(run_id=run_id, guid=guid, data=data)

    def _tag(self, step: StepName, target: str, inputs: Mapping[str, float]) -> None:
        self._tagger.reset()
        self._tagger.add_tags(["calibration", str(step), target, *self.tags])
        self._tagger.add_attributes(
            {
                "task": str(step),
                "qubit": target,
                "chip": self.chip.name,
                **self.attributes,
                **{f"input.{name}": repr(value) for name, value in inputs.items()},
            }
        )
        # A measurement snapshots its station from cached values (update=False); read the
        # tags once so an instrument that serves them through get commands is current too.
        self.metadata.snapshot(update=True)

    def result(
        self,
        step: StepName,
        target: str,
        inputs: Mapping[str, float],
        recording: Recording,
        outputs: Mapping[str, Estimate],
        diagnostics: Mapping[str, tuple[Estimate, str]] | None = None,
    ) -> MeasurementResult:
        """Build the result of a step from its fitted outputs (units from the graph).

        Args:
            step: The step.
            target: The qubit or pair id.
            inputs: The input values it used.
            recording: Its QCoDeS run.
            outputs: Fitted calibrated parameters by name.
            diagnostics: Further fitted quantities by name, each with its unit.
        """
        return MeasurementResult(
            step=step,
            target=target,
            inputs=dict(inputs),
            outputs={
                name: Measured(value=e.value, unit=PARAMETER_UNITS[name], error=e.error)
                for name, e in outputs.items()
            },
            diagnostics={
                name: Measured(value=e.value, unit=unit, error=e.error)
                for name, (e, unit) in (diagnostics or {}).items()
            },
            run_id=recording.run_id,
            guid=recording.guid,
            db_path=self.db_path,
            experiment_name=self.experiment_name,
            measured_at=utc_now(),
            dataset=self.dataset_of(step, recording),
        )

    def dataset_of(self, step: StepName, recording: Recording) -> DatasetEntity:
        """A recorded run as provenance's raw-measurement entity (``dataset:{guid}``)."""
        return DatasetEntity(
            guid=recording.guid,
            name=step.value,
            run_id=recording.run_id,
            source_db=str(self.db_path.resolve()),
            experiment_name=self.experiment_name,
            sample_name=self.chip.name,
        )


@contextmanager
def _connection(path: Path) -> Iterator[AtomicConnection]:
    """Open a QCoDeS connection for one call; database failures are named by path."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = connect(path)
    except (sqlite3.Error, OSError, RuntimeError) as e:
        failure = _database_failure(path, e)
        if failure is None:
            raise
        raise failure from e
    try:
        yield conn
    finally:
        conn.close()


def _database_failure(path: Path, error: Exception) -> MeasurementDatabaseError | None:
    """Name the database for a SQLite failure; QCoDeS wraps some in ``RuntimeError``.

    Returns None when neither ``error`` nor its causes come from SQLite or the OS.
    """
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, sqlite3.Error | OSError):
            return MeasurementDatabaseError(path, str(cause))
        cause = cause.__cause__
    return None


@dataclass(frozen=True)
class Knob:
    """A chip parameter a step sets from one of its inputs (or from its own settings)."""

    parameter: Parameter
    value: float
    source: str

    def apply(self, step: StepName, target: str) -> None:
        """Set the parameter.

        Raises:
            InvalidInputError: The value is outside the parameter's validator.
        """
        try:
            self.parameter.set(self.value)
        except ValueError as e:
            raise InvalidInputError(step, target, self.source, self.value, str(e)) from e


@dataclass(frozen=True)
class Trace:
    """Sweep parameters, measured parameters, and how to acquire all their columns."""

    setpoints: tuple[Parameter, ...]
    dependents: tuple[Parameter, ...]
    acquire: Callable[[list[tuple[FloatArray, ...]]], tuple[FloatArray, ...]]
    """Called with the data of the traces acquired before it in the same run."""


@dataclass(frozen=True)
class Recording:
    """One recorded QCoDeS run: its id and GUID, and the columns of each trace."""

    run_id: int
    guid: str
    data: list[tuple[FloatArray, ...]]
