"""The seven calibration steps: measure, fit, return the values.

Each step of :data:`qops.calibration.graph.CALIBRATION_STEPS` has one function here. It sets
the chip's knobs from its inputs, records one QCoDeS run through its
:class:`~qops.calibration.measurement.MeasurementContext`, fits the data (outside the QCoDeS
write lock) and returns a :class:`~qops.calibration.measurement.MeasurementResult`. The
sweep settings of each step, with defaults that suit the simulated chip, are here too.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Protocol, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from qcodes.parameters import Parameter

from qops.calibration.errors import FitError, InvalidInputError, MissingInputError
from qops.calibration.graph import StepName, required_inputs
from qops.calibration.instruments import measurement_context
from qops.calibration.measurement import (
    Knob,
    MeasurementContext,
    MeasurementResult,
    Recording,
    Trace,
)
from qops.calibration.plan import ChipSpec
from qops.calibration.recording import Fitted, InputValues
from qops.chip import fitting, physics
from qops.chip.fitting import Estimate, FitProblem
from qops.chip.physics import FloatArray

logger = logging.getLogger(__name__)


# --- Sweep settings -----------------------------------------------------------------------


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FrequencySettings(_Settings):
    """Resonator and qubit spectroscopy windows of ``CheckFrequency``.

    A centre left unset is the qubit's design value. Frequencies in Hz.
    """

    readout_center: float | None = Field(default=None, gt=0)
    readout_span: float = Field(default=16e6, gt=0)
    qubit_center: float | None = Field(default=None, gt=0)
    qubit_span: float = Field(default=20e6, gt=0)
    points: int = Field(default=161, ge=21, le=5001)


class RabiSettings(_Settings):
    """Amplitude sweep of ``CheckRabi``, from 0 to ``max_amplitude`` V."""

    max_amplitude: float = Field(default=1.0, gt=0, le=2)
    points: int = Field(default=81, ge=21, le=5001)


class DecaySettings(_Settings):
    """Delay sweep of ``CheckT1`` and ``CheckT2Echo``, from 0 to ``max_delay`` s."""

    max_delay: float = Field(default=300e-6, gt=0, le=10e-3)
    points: int = Field(default=61, ge=11, le=5001)


class RamseySettings(_Settings):
    """Delay sweep of ``CheckRamsey``.

    The drive is set ``artificial_detuning`` Hz above the input frequency so the fringes
    have a known sign; it must exceed the expected frequency error and stay well below
    the sampling limit ``points / (2 max_delay)``.
    """

    max_delay: float = Field(default=50e-6, gt=0, le=10e-3)
    points: int = Field(default=201, ge=21, le=5001)
    artificial_detuning: float = Field(default=1e6, gt=0)

    @model_validator(mode="after")
    def _resolvable(self) -> RamseySettings:
        nyquist = (self.points - 1) / (2 * self.max_delay)
        if self.artificial_detuning > 0.5 * nyquist:
            raise ValueError(
                f"artificial_detuning {self.artificial_detuning:g} Hz needs more than "
                f"{self.points} points over {self.max_delay:g} s (sampling limit {nyquist:g} Hz)"
            )
        return self


class ReadoutSettings(_Settings):
    """Single shots per prepared state of ``CheckReadoutFidelity``."""

    shots: int = Field(default=1000, ge=50, le=100_000)


class BenchmarkingSettings(_Settings):
    """Sequence lengths of ``CheckCZ``: ``points`` lengths spread geometrically up to
    ``max_length`` layers."""

    max_length: int = Field(default=200, ge=4, le=100_000)
    points: int = Field(default=25, ge=5, le=1000)


_DEFAULT_DECAY = {
    StepName.CHECK_T1: DecaySettings(max_delay=300e-6),
    StepName.CHECK_T2_ECHO: DecaySettings(max_delay=250e-6),
}


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


def _fitted(step: StepName, target: str, recording: Recording, fit: Callable[[], _T]) -> _T:
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
    knobs: Sequence[Knob],
    swept: Parameter,
    measured: Parameter,
    values: FloatArray,
    acquire: Callable[[FloatArray], FloatArray],
) -> tuple[Recording, FloatArray, FloatArray]:
    """Record one 1-D sweep of ``swept`` over ``values``; return the run and its data."""
    trace = Trace((swept,), (measured,), lambda _: (values, acquire(values)))
    recording = context.record(step, target, used, knobs, [trace])
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

    recording = context.record(
        step,
        qid,
        used,
        knobs=[Knob(qubit.drive_amplitude, 0.0, "settings")],
        traces=[
            Trace((qubit.readout_frequency,), (qubit.resonator_response,), resonator),
            Trace((qubit.drive_frequency,), (qubit.spectroscopy_response,), spectroscopy),
        ],
    )
    (r_x, r_y), (q_x, q_y) = recording.data
    resonator_fit = _fitted(step, qid, recording, lambda: fitting.fit_lorentzian_dip(r_x, r_y))
    qubit_fit = _fitted(step, qid, recording, lambda: fitting.fit_lorentzian_dip(q_x, q_y))
    return context.result(
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
        Output ``pi_amplitude`` (V); diagnostic ``rabi_contrast`` (dimensionless).

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
    knobs = [Knob(qubit.drive_frequency, used["qubit_frequency"], "qubit_frequency")]
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
    return context.result(
        step,
        qid,
        used,
        recording,
        outputs={"pi_amplitude": fit.pi_amplitude},
        diagnostics={"rabi_contrast": (fit.contrast, "")},
    )


def _drive_knobs(
    qubit_frequency: Parameter,
    drive_amplitude: Parameter,
    used: Mapping[str, float],
    suffix: str = "",
    detuning: float = 0.0,
) -> list[Knob]:
    """The knobs of a pulsed step: drive at the qubit frequency with the π amplitude."""
    frequency_key, amplitude_key = f"qubit_frequency{suffix}", f"pi_amplitude{suffix}"
    return [
        Knob(qubit_frequency, used[frequency_key] + detuning, frequency_key),
        Knob(drive_amplitude, used[amplitude_key], amplitude_key),
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
    return context.result(
        step,
        qid,
        used,
        recording,
        outputs={output: fit.time},
        diagnostics={"decay_amplitude": (fit.amplitude, "")},
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
        Output ``t1`` (s); diagnostic ``decay_amplitude`` (dimensionless), smaller with a
        poor π pulse.

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
        Output ``t2_echo`` (s); diagnostic ``decay_amplitude`` (dimensionless).

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
    return context.result(
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
        Output ``readout_fidelity`` (dimensionless); diagnostics ``error_ground`` and
        ``error_excited`` (dimensionless, the two misassignment rates) and ``iq_separation``
        (V, error 0).

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

    recording = context.record(
        step,
        qid,
        used,
        knobs=[
            *_drive_knobs(qubit.drive_frequency, qubit.drive_amplitude, used),
            Knob(qubit.readout_frequency, used["readout_frequency"], "readout_frequency"),
        ],
        traces=[
            Trace((qubit.prepared_state, qubit.shot), (qubit.readout_i, qubit.readout_q), shots)
        ],
    )
    ((prepared, _, i, q),) = recording.data
    fit = _fitted(step, qid, recording, lambda: fitting.fit_assignment(prepared, i, q))
    return context.result(
        step,
        qid,
        used,
        recording,
        outputs={"readout_fidelity": fit.fidelity},
        diagnostics={
            "error_ground": (fit.error_ground, ""),
            "error_excited": (fit.error_excited, ""),
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
            qubits (see :func:`qops.calibration.graph.required_inputs`).
        settings: The sequence lengths.

    Returns:
        Output ``cz_fidelity`` (dimensionless) of the pair (target is the canonical pair id);
        diagnostic ``decay_per_layer`` (dimensionless).

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
    return context.result(
        step,
        target,
        used,
        recording,
        outputs={"cz_fidelity": fidelity},
        diagnostics={"decay_per_layer": (fit.decay, "")},
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
        ChipError, CalibrationError: Whatever the step function raises (see each
            ``check_*``).
    """
    return STEP_FUNCTIONS[StepName(step)](context, target, inputs)


def step_task_name(step: StepName, separator: str = "-") -> str:
    """``CheckT2Echo`` -> ``check-t2-echo`` (or ``check_t2_echo``): a step's kebab name.

    The form of a step's Prefect task name (and, with ``_``, of its function name); the
    ``task_name`` provenance records is the step name itself (``CheckT2Echo``).
    """
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", separator, step.value).lower()


def step_measurement(step: StepName) -> Callable[..., Fitted]:
    """The body of the calibration task of ``step``, with the parameters it is recorded by.

    The function measures ``qid`` on the simulated chip through QCoDeS, fits and returns
    the outputs with the QCoDeS run they were fitted from (provenance records the run as a
    raw measurement the outputs were derived from); ``tasks/calibration.py`` wraps it as a
    Prefect task, and a calibration recorded without Prefect (``RecordedCalibration``)
    calls the same function.
    """

    def measure(
        qid: str,
        chip: ChipSpec,
        epoch: int,
        database_path: str,
        execution_id: str,
        project_id: str,
        chip_id: str,
        inputs: InputValues,
    ) -> Fitted:
        context = measurement_context(chip, epoch, Path(database_path), execution_id)
        values = {key: float(use.value) for key, use in inputs.items()}
        result = run_step(context, step, qid, values)
        return Fitted(outputs=result.outputs, datasets=[result.dataset])

    measure.__name__ = step_task_name(step, "_")
    measure.__qualname__ = measure.__name__
    return measure
