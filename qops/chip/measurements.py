"""Calibration measurements on a :class:`~qops.chip.instrument.SimulatedChip`.

Each step of :data:`qops.chip.steps.CALIBRATION_STEPS` has one function here. It sets the
chip's knobs from its inputs, tags the run on the metadata instrument, records a real
QCoDeS run (``Measurement`` in the context's database, with a station snapshot holding the
chip and the ``qh_meta`` instrument), fits the data and returns a
:class:`~qops.chip.models.MeasurementResult`.

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
import math
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np
from qcodes.dataset import AtomicConnection, Measurement, connect, load_or_create_experiment
from qcodes.instrument import Instrument
from qcodes.parameters import Parameter
from qcodes.station import Station

from qops.chip import fitting, physics
from qops.chip.errors import (
    FitError,
    InvalidInputError,
    MeasurementDatabaseError,
    MetadataInstrumentError,
    MissingInputError,
)
from qops.chip.fitting import Estimate, FitProblem
from qops.chip.instrument import SimulatedChip
from qops.chip.models import FittedValue, MeasurementResult
from qops.chip.physics import FloatArray
from qops.chip.settings import (
    BenchmarkingSettings,
    DecaySettings,
    FrequencySettings,
    RabiSettings,
    RamseySettings,
    ReadoutSettings,
)
from qops.chip.steps import PARAMETER_UNITS, StepName, required_inputs
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


_DEFAULT_DECAY = {
    StepName.CHECK_T1: DecaySettings(max_delay=300e-6),
    StepName.CHECK_T2_ECHO: DecaySettings(max_delay=250e-6),
}


# --- Context ------------------------------------------------------------------------------


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

    def _record(
        self,
        step: StepName,
        target: str,
        inputs: Mapping[str, float],
        knobs: Sequence[_Knob],
        traces: Sequence[_Trace],
    ) -> _Recording:
        """Set the knobs, tag, and record ``traces`` as one QCoDeS run."""
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
        return _Recording(run_id=run_id, guid=guid, data=data)

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

    def _result(
        self,
        step: StepName,
        target: str,
        inputs: Mapping[str, float],
        recording: _Recording,
        outputs: Mapping[str, Estimate],
        diagnostics: Mapping[str, tuple[Estimate, str]] | None = None,
    ) -> MeasurementResult:
        """Build the result of a step from its fitted outputs (units from the graph)."""
        return MeasurementResult(
            step=step,
            target=target,
            inputs=dict(inputs),
            outputs={
                name: FittedValue(value=e.value, unit=PARAMETER_UNITS[name], error=e.error)
                for name, e in outputs.items()
            },
            diagnostics={
                name: FittedValue(value=e.value, unit=unit, error=e.error)
                for name, (e, unit) in (diagnostics or {}).items()
            },
            run_id=recording.run_id,
            guid=recording.guid,
            db_path=self.db_path,
            experiment_name=self.experiment_name,
            measured_at=utc_now(),
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
class _Knob:
    """A chip parameter a step sets from one of its inputs (or from its own settings)."""

    parameter: Parameter
    value: float
    source: str

    def apply(self, step: StepName, target: str) -> None:
        try:
            self.parameter.set(self.value)
        except ValueError as e:
            raise InvalidInputError(step, target, self.source, self.value, str(e)) from e


@dataclass(frozen=True)
class _Trace:
    """Sweep parameters, measured parameters, and how to acquire all their columns."""

    setpoints: tuple[Parameter, ...]
    dependents: tuple[Parameter, ...]
    acquire: Callable[[list[tuple[FloatArray, ...]]], tuple[FloatArray, ...]]
    """Called with the data of the traces acquired before it in the same run."""


@dataclass(frozen=True)
class _Recording:
    run_id: int
    guid: str
    data: list[tuple[FloatArray, ...]]


# --- Steps --------------------------------------------------------------------------------

_NO_INPUTS: Mapping[str, float] = MappingProxyType({})
_T = TypeVar("_T")


def _take_inputs(
    step: StepName, target: str, qubits: tuple[str, ...], inputs: Mapping[str, float]
) -> dict[str, float]:
    """Return the inputs ``step`` needs, as floats; other keys are ignored."""
    keys = required_inputs(step, qubits)
    missing = [key for key in keys if key not in inputs]
    if missing:
        raise MissingInputError(step, target, missing)
    used: dict[str, float] = {}
    for key in keys:
        raw = inputs[key]
        try:
            value = float(raw)
        except (TypeError, ValueError) as e:
            raise InvalidInputError(step, target, key, raw, "not a number") from e
        if not math.isfinite(value):
            raise InvalidInputError(step, target, key, value, "not a finite number")
        used[key] = value
    return used


def _fitted(step: StepName, target: str, recording: _Recording, fit: Callable[[], _T]) -> _T:
    """Run ``fit``; a fit problem becomes a :class:`FitError` naming step, target and run."""
    try:
        return fit()
    except FitProblem as e:
        logger.warning(
            "%s on %s: fit of QCoDeS run %d failed: %s", step, target, recording.run_id, e.reason
        )
        raise FitError(step, target, e.reason, recording.run_id) from e


def _sweep(center: float, span: float, points: int) -> FloatArray:
    return np.linspace(center - span / 2, center + span / 2, points)


def _smoothed_minimum(x: FloatArray, y: FloatArray) -> float:
    """Where a noisy trace is lowest after a 5-point running mean: a quick dip estimate."""
    smooth = np.convolve(y, np.ones(5) / 5, mode="same")
    return float(x[2:-2][int(np.argmin(smooth[2:-2]))])


def _record_sweep(
    context: MeasurementContext,
    step: StepName,
    target: str,
    used: Mapping[str, float],
    knobs: Sequence[_Knob],
    swept: Parameter,
    measured: Parameter,
    values: FloatArray,
    acquire: Callable[[FloatArray], FloatArray],
) -> tuple[_Recording, FloatArray, FloatArray]:
    """Record one 1-D sweep of ``swept`` over ``values``; return the run and its data."""
    trace = _Trace((swept,), (measured,), lambda _: (values, acquire(values)))
    recording = context._record(step, target, used, knobs, [trace])
    ((x, y),) = recording.data
    return recording, x, y


def check_frequency(
    context: MeasurementContext,
    qid: str,
    inputs: Mapping[str, float] = _NO_INPUTS,
    settings: FrequencySettings | None = None,
) -> MeasurementResult:
    """Find the readout resonator and the qubit transition by spectroscopy.

    One QCoDeS run with two sweeps: the readout probe over the resonator window (dip at
    the readout frequency), then a saturating drive over the qubit window, read out at
    the lowest point of the first sweep (dip at the qubit frequency). Both dips are fitted
    with Lorentzians.

    Args:
        context: Chip, metadata instrument and database.
        qid: The qubit (``Q0``).
        inputs: None needed.
        settings: Sweep windows; unset centres are the qubit's design frequencies.

    Returns:
        Outputs ``qubit_frequency`` and ``readout_frequency`` (Hz); diagnostics
        ``qubit_linewidth`` and ``resonator_linewidth`` (half widths, Hz).

    Raises:
        UnknownQubitError: ``qid`` is not on the chip.
        FitError: No resonance in a window, or a centre that is not well defined.
        MeasurementDatabaseError: The database cannot be written.
    """
    step = StepName.CHECK_FREQUENCY
    qubit = context.chip.qubit(qid)
    used = _take_inputs(step, qid, (qid,), inputs)
    s = settings or FrequencySettings()
    readout = _sweep(
        s.readout_center or float(qubit.design_readout_frequency()), s.readout_span, s.points
    )
    drive = _sweep(s.qubit_center or float(qubit.design_qubit_frequency()), s.qubit_span, s.points)

    def resonator(_: list[tuple[FloatArray, ...]]) -> tuple[FloatArray, ...]:
        return readout, qubit.acquire_resonator_spectroscopy(readout)

    def spectroscopy(before: list[tuple[FloatArray, ...]]) -> tuple[FloatArray, ...]:
        qubit.readout_frequency.set(_smoothed_minimum(*before[0]))
        return drive, qubit.acquire_qubit_spectroscopy(drive)

    recording = context._record(
        step,
        qid,
        used,
        knobs=[_Knob(qubit.drive_amplitude, 0.0, "settings")],
        traces=[
            _Trace((qubit.readout_frequency,), (qubit.resonator_response,), resonator),
            _Trace((qubit.drive_frequency,), (qubit.spectroscopy_response,), spectroscopy),
        ],
    )
    (r_x, r_y), (q_x, q_y) = recording.data
    resonator_fit = _fitted(step, qid, recording, lambda: fitting.fit_lorentzian_dip(r_x, r_y))
    qubit_fit = _fitted(step, qid, recording, lambda: fitting.fit_lorentzian_dip(q_x, q_y))
    return context._result(
        step,
        qid,
        used,
        recording,
        outputs={"qubit_frequency": qubit_fit.center, "readout_frequency": resonator_fit.center},
        diagnostics={
            "qubit_linewidth": (qubit_fit.hwhm, "Hz"),
            "resonator_linewidth": (resonator_fit.hwhm, "Hz"),
        },
    )


def check_rabi(
    context: MeasurementContext,
    qid: str,
    inputs: Mapping[str, float] = _NO_INPUTS,
    settings: RabiSettings | None = None,
) -> MeasurementResult:
    """Sweep the drive amplitude at ``qubit_frequency`` and fit the Rabi oscillation.

    A drive off the qubit frequency lowers the contrast (reported as the ``rabi_contrast``
    diagnostic) and biases the π amplitude.

    Args:
        context: Chip, metadata instrument and database.
        qid: The qubit.
        inputs: ``qubit_frequency`` (Hz).
        settings: The amplitude sweep.

    Returns:
        Output ``pi_amplitude`` (V); diagnostic ``rabi_contrast`` (1).

    Raises:
        UnknownQubitError, MissingInputError, InvalidInputError: Bad target or inputs.
        FitError: No oscillation, or the π amplitude is beyond the sweep.
        MeasurementDatabaseError: The database cannot be written.
    """
    step = StepName.CHECK_RABI
    qubit = context.chip.qubit(qid)
    used = _take_inputs(step, qid, (qid,), inputs)
    s = settings or RabiSettings()
    amplitudes = np.linspace(0, s.max_amplitude, s.points)
    knobs = [_Knob(qubit.drive_frequency, used["qubit_frequency"], "qubit_frequency")]
    recording, x, y = _record_sweep(
        context,
        step,
        qid,
        used,
        knobs,
        qubit.drive_amplitude,
        qubit.excited_population,
        amplitudes,
        qubit.acquire_rabi,
    )
    fit = _fitted(step, qid, recording, lambda: fitting.fit_rabi(x, y))
    return context._result(
        step,
        qid,
        used,
        recording,
        outputs={"pi_amplitude": fit.pi_amplitude},
        diagnostics={"rabi_contrast": (fit.contrast, "1")},
    )


def _drive_knobs(
    qubit_frequency: Parameter,
    drive_amplitude: Parameter,
    used: Mapping[str, float],
    suffix: str = "",
    detuning: float = 0.0,
) -> list[_Knob]:
    """The knobs of a pulsed step: drive at the qubit frequency with the π amplitude."""
    frequency_key, amplitude_key = f"qubit_frequency{suffix}", f"pi_amplitude{suffix}"
    return [
        _Knob(qubit_frequency, used[frequency_key] + detuning, frequency_key),
        _Knob(drive_amplitude, used[amplitude_key], amplitude_key),
    ]


def _check_decay(
    step: StepName,
    context: MeasurementContext,
    qid: str,
    inputs: Mapping[str, float],
    settings: DecaySettings,
    output: str,
) -> MeasurementResult:
    qubit = context.chip.qubit(qid)
    used = _take_inputs(step, qid, (qid,), inputs)
    delays = np.linspace(0, settings.max_delay, settings.points)
    acquire = qubit.acquire_t1 if step is StepName.CHECK_T1 else qubit.acquire_echo
    knobs = _drive_knobs(qubit.drive_frequency, qubit.drive_amplitude, used)
    recording, x, y = _record_sweep(
        context, step, qid, used, knobs, qubit.delay, qubit.excited_population, delays, acquire
    )
    label = "T1" if step is StepName.CHECK_T1 else "T2 echo"
    fit = _fitted(step, qid, recording, lambda: fitting.fit_exponential_decay(x, y, label))
    return context._result(
        step,
        qid,
        used,
        recording,
        outputs={output: fit.time},
        diagnostics={"decay_amplitude": (fit.amplitude, "1")},
    )


def check_t1(
    context: MeasurementContext,
    qid: str,
    inputs: Mapping[str, float] = _NO_INPUTS,
    settings: DecaySettings | None = None,
) -> MeasurementResult:
    """π pulse, wait, read out: fit the exponential decay of the excited population.

    Args:
        context: Chip, metadata instrument and database.
        qid: The qubit.
        inputs: ``qubit_frequency`` (Hz), ``pi_amplitude`` (V).
        settings: The delay sweep (default up to 300 µs).

    Returns:
        Output ``t1`` (s); diagnostic ``decay_amplitude`` (1), smaller with a poor π pulse.

    Raises:
        UnknownQubitError, MissingInputError, InvalidInputError: Bad target or inputs.
        FitError: No decay visible, or T1 far beyond the sweep.
        MeasurementDatabaseError: The database cannot be written.
    """
    step = StepName.CHECK_T1
    return _check_decay(step, context, qid, inputs, settings or _DEFAULT_DECAY[step], "t1")


def check_t2_echo(
    context: MeasurementContext,
    qid: str,
    inputs: Mapping[str, float] = _NO_INPUTS,
    settings: DecaySettings | None = None,
) -> MeasurementResult:
    """Hahn echo over total free time: fit the exponential decay of the echo.

    Args:
        context: Chip, metadata instrument and database.
        qid: The qubit.
        inputs: ``qubit_frequency`` (Hz), ``pi_amplitude`` (V).
        settings: The delay sweep (default up to 250 µs).

    Returns:
        Output ``t2_echo`` (s); diagnostic ``decay_amplitude`` (1).

    Raises:
        UnknownQubitError, MissingInputError, InvalidInputError: Bad target or inputs.
        FitError: No decay visible, or T2 echo far beyond the sweep.
        MeasurementDatabaseError: The database cannot be written.
    """
    step = StepName.CHECK_T2_ECHO
    return _check_decay(step, context, qid, inputs, settings or _DEFAULT_DECAY[step], "t2_echo")


def check_ramsey(
    context: MeasurementContext,
    qid: str,
    inputs: Mapping[str, float] = _NO_INPUTS,
    settings: RamseySettings | None = None,
) -> MeasurementResult:
    """Two π/2 pulses apart by a swept delay, driven ``artificial_detuning`` above the input.

    The fringes oscillate at (drive − qubit frequency), so the fitted fringe frequency
    refines the qubit frequency: ``qubit_frequency + artificial_detuning − fringe``.

    Args:
        context: Chip, metadata instrument and database.
        qid: The qubit.
        inputs: ``qubit_frequency`` (Hz), ``pi_amplitude`` (V).
        settings: The delay sweep and artificial detuning.

    Returns:
        Outputs ``t2_star`` (s) and the refined ``qubit_frequency`` (Hz); diagnostics
        ``fringe_frequency`` and ``frequency_correction`` (Hz, refined minus input).

    Raises:
        UnknownQubitError, MissingInputError, InvalidInputError: Bad target or inputs.
        FitError: No fringes, or fringes the sweep cannot resolve.
        MeasurementDatabaseError: The database cannot be written.
    """
    step = StepName.CHECK_RAMSEY
    qubit = context.chip.qubit(qid)
    used = _take_inputs(step, qid, (qid,), inputs)
    s = settings or RamseySettings()
    delays = np.linspace(0, s.max_delay, s.points)
    knobs = _drive_knobs(
        qubit.drive_frequency, qubit.drive_amplitude, used, detuning=s.artificial_detuning
    )
    recording, x, y = _record_sweep(
        context,
        step,
        qid,
        used,
        knobs,
        qubit.delay,
        qubit.excited_population,
        delays,
        qubit.acquire_ramsey,
    )
    fit = _fitted(step, qid, recording, lambda: fitting.fit_ramsey(x, y))
    refined = used["qubit_frequency"] + s.artificial_detuning - fit.frequency.value
    correction = refined - used["qubit_frequency"]
    return context._result(
        step,
        qid,
        used,
        recording,
        outputs={
            "t2_star": fit.decay_time,
            "qubit_frequency": Estimate(refined, fit.frequency.error),
        },
        diagnostics={
            "fringe_frequency": (fit.frequency, "Hz"),
            "frequency_correction": (Estimate(correction, fit.frequency.error), "Hz"),
        },
    )


def check_readout_fidelity(
    context: MeasurementContext,
    qid: str,
    inputs: Mapping[str, float] = _NO_INPUTS,
    settings: ReadoutSettings | None = None,
) -> MeasurementResult:
    """Single shots of |0> and of |1> (π pulse) in the IQ plane: the assignment fidelity.

    Args:
        context: Chip, metadata instrument and database.
        qid: The qubit.
        inputs: ``qubit_frequency`` (Hz), ``readout_frequency`` (Hz), ``pi_amplitude`` (V).
        settings: Shots per prepared state.

    Returns:
        Output ``readout_fidelity`` (1); diagnostics ``error_ground`` and ``error_excited``
        (1, the two misassignment rates) and ``iq_separation`` (V, error 0).

    Raises:
        UnknownQubitError, MissingInputError, InvalidInputError: Bad target or inputs.
        FitError: The two states cannot be told apart.
        MeasurementDatabaseError: The database cannot be written.
    """
    step = StepName.CHECK_READOUT_FIDELITY
    qubit = context.chip.qubit(qid)
    used = _take_inputs(step, qid, (qid,), inputs)
    s = settings or ReadoutSettings()

    def shots(_: list[tuple[FloatArray, ...]]) -> tuple[FloatArray, ...]:
        prepared, index, i, q = qubit.acquire_single_shots(s.shots)
        return prepared.astype(np.float64), index.astype(np.float64), i, q

    recording = context._record(
        step,
        qid,
        used,
        knobs=[
            *_drive_knobs(qubit.drive_frequency, qubit.drive_amplitude, used),
            _Knob(qubit.readout_frequency, used["readout_frequency"], "readout_frequency"),
        ],
        traces=[
            _Trace((qubit.prepared_state, qubit.shot), (qubit.readout_i, qubit.readout_q), shots)
        ],
    )
    ((prepared, _, i, q),) = recording.data
    fit = _fitted(step, qid, recording, lambda: fitting.fit_assignment(prepared, i, q))
    return context._result(
        step,
        qid,
        used,
        recording,
        outputs={"readout_fidelity": fit.fidelity},
        diagnostics={
            "error_ground": (fit.error_ground, "1"),
            "error_excited": (fit.error_excited, "1"),
            "iq_separation": (Estimate(fit.separation, 0.0), "V"),
        },
    )


def check_cz(
    context: MeasurementContext,
    pair: str,
    inputs: Mapping[str, float] = _NO_INPUTS,
    settings: BenchmarkingSettings | None = None,
) -> MeasurementResult:
    """Randomized benchmarking of CZ layers on a coupled pair.

    Each layer is a CZ and single-qubit gates driven with each qubit's inputs, so a
    miscalibrated qubit lowers the fitted fidelity.

    Args:
        context: Chip, metadata instrument and database.
        pair: The coupled pair (``Q0-Q1``; either order).
        inputs: ``qubit_frequency:<qid>`` (Hz) and ``pi_amplitude:<qid>`` (V) of both
            qubits (see :func:`qops.chip.steps.required_inputs`).
        settings: The sequence lengths.

    Returns:
        Output ``cz_fidelity`` (1) of the pair (target is the canonical pair id);
        diagnostic ``decay_per_layer`` (1).

    Raises:
        UnknownQubitError, UnknownPairError: A qubit is not on the chip, or the two are
            not coupled in the topology.
        MissingInputError, InvalidInputError: Bad inputs.
        FitError: No decay visible or no well-defined decay.
        MeasurementDatabaseError: The database cannot be written.
    """
    step = StepName.CHECK_CZ
    channel = context.chip.pair(pair)
    target = channel.pair_id
    qids = tuple(q.short_name for q in channel.qubits)
    used = _take_inputs(step, target, qids, inputs)
    s = settings or BenchmarkingSettings()
    lengths = np.unique(np.round(np.geomspace(1, s.max_length, s.points)).astype(np.int64))
    knobs = [
        knob
        for qubit in channel.qubits
        for knob in _drive_knobs(
            qubit.drive_frequency, qubit.drive_amplitude, used, suffix=f":{qubit.short_name}"
        )
    ]
    recording, x, y = _record_sweep(
        context,
        step,
        target,
        used,
        knobs,
        channel.sequence_length,
        channel.survival_probability,
        lengths.astype(np.float64),
        lambda m: channel.acquire_benchmarking(m.astype(np.int64)),
    )
    fit = _fitted(step, target, recording, lambda: fitting.fit_benchmarking_decay(x, y))
    fidelity = Estimate(
        physics.decay_to_two_qubit_fidelity(fit.decay.value), 0.75 * fit.decay.error
    )
    return context._result(
        step,
        target,
        used,
        recording,
        outputs={"cz_fidelity": fidelity},
        diagnostics={"decay_per_layer": (fit.decay, "1")},
    )


class StepFunction(Protocol):
    """The call signature every step function shares."""

    def __call__(
        self, context: MeasurementContext, target: str, inputs: Mapping[str, float], /
    ) -> MeasurementResult:
        """Measure ``target`` with ``inputs``."""
        ...


STEP_FUNCTIONS: Mapping[StepName, StepFunction] = MappingProxyType(
    {
        StepName.CHECK_FREQUENCY: check_frequency,
        StepName.CHECK_RABI: check_rabi,
        StepName.CHECK_T1: check_t1,
        StepName.CHECK_RAMSEY: check_ramsey,
        StepName.CHECK_T2_ECHO: check_t2_echo,
        StepName.CHECK_READOUT_FIDELITY: check_readout_fidelity,
        StepName.CHECK_CZ: check_cz,
    }
)
"""The function of each step, with default settings."""


def run_step(
    context: MeasurementContext,
    step: StepName | str,
    target: str,
    inputs: Mapping[str, float] = _NO_INPUTS,
) -> MeasurementResult:
    """Run calibration step ``step`` on ``target`` (qubit or pair id) with default settings.

    Raises:
        ValueError: ``step`` is not a calibration step name.
        ChipError: Whatever the step function raises (see each ``check_*``).
    """
    return STEP_FUNCTIONS[StepName(step)](context, target, inputs)
