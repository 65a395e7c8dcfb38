"""Checks: a short measurement per calibration step that says in spec, out of spec or bad data.

A check measures a few points of its step's experiment at the currently recorded values (no
sweep, no fit) and compares what they imply with the recorded values and the thresholds of
the maintenance policy (``checks:`` in the policy file):

- ``CheckFrequency``: resonator and qubit spectroscopy at the recorded frequency and ± a
  linewidth (plus one background point); the asymmetry of the three depths gives the
  offset of the line.
- ``CheckRabi``: the excited population with no pulse and after one π pulse.
- ``CheckT1`` / ``CheckT2Echo``: the decay at delays 0, the recorded time and five times it.
- ``CheckRamsey``: fringes at five delays: the phase at delay 0 and one period of the
  artificial detuning later (two quadratures each) gives the frequency offset.
- ``CheckReadoutFidelity``: fewer single shots than the calibration, thresholded.
- ``CheckCZ``: two sequence lengths of randomized benchmarking.

Each check is one QCoDeS run through :meth:`MeasurementContext.record` (so it is in the
lab's database like any measurement) and returns a :class:`CheckResult`.
:func:`check_record` turns it into a provenance activity of type ``check`` that *used* the
versions it checked, so lineage shows checks; :mod:`tasks.maintenance` records it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import StrEnum

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from qops.calibration.graph import CALIBRATION_STEPS, Scope, StepName, input_key, required_inputs
from qops.calibration.measurement import Knob, MeasurementContext, Trace
from qops.calibration.steps import step_task_name
from qops.chip.fitting import FitProblem, fit_assignment
from qops.chip.physics import FloatArray, decay_to_two_qubit_fidelity
from qops.maintenance.errors import MaintenanceError
from qops.maintenance.policy import MaintenancePolicy
from qops.provenance.models import (
    ActivityStatus,
    Agent,
    DatasetEntity,
    InputUse,
    ParameterVersion,
    TaskRecord,
)
from qops.timeutil import utc_now

CHECK_TASK_TYPE = "check"
"""The activity type a check is recorded with."""


class CheckVerdict(StrEnum):
    """What a check found."""

    IN_SPEC = "in-spec"
    OUT_OF_SPEC = "out-of-spec"
    BAD_DATA = "bad-data"


class CheckResult(BaseModel):
    """What one check measured and found.

    Attributes:
        step: The calibration step checked.
        target: Its qubit or pair.
        verdict: In spec, out of spec, or bad data (the points do not show what the check
            looks for: no line, no decay, no contrast).
        reasons: Why, one sentence each.
        estimates: What the points imply (e.g. ``qubit_offset_hz``, ``t1``), by name, in
            base units.
        values: The recorded values the check compared with, by key (input keys
            ``name:qid`` for a pair).
        points: Setpoints measured.
        run_id: The QCoDeS run.
        guid: Its GUID.
        measured_at: When the check finished.
        dataset: The run as provenance's raw-measurement entity (the check used it).
    """

    model_config = ConfigDict(frozen=True)

    step: StepName
    target: str
    verdict: CheckVerdict
    reasons: list[str] = Field(default_factory=list)
    estimates: dict[str, float] = Field(default_factory=dict)
    values: dict[str, float] = Field(default_factory=dict)
    points: int
    run_id: int
    guid: str
    measured_at: datetime
    dataset: DatasetEntity | None = None

    @property
    def passed(self) -> bool:
        """Whether the check found its parameters in spec."""
        return self.verdict is CheckVerdict.IN_SPEC


class CheckValueError(MaintenanceError):
    """A check was given recorded values it cannot measure at.

    Args:
        step: The step.
        target: Its qubit or pair.
        key: The value.
        problem: What is wrong.
    """

    def __init__(self, step: StepName, target: str, key: str, problem: str) -> None:
        self.step = step
        self.target = target
        self.key = key
        self.problem = problem
        super().__init__(f"check of {step} on {target}: {key} {problem}")


def checked_keys(step: StepName, qubits: tuple[str, ...]) -> tuple[str, ...]:
    """The recorded values the check of ``step`` reads: the step's inputs and outputs.

    Per-qubit steps use plain names; a pair step its inputs as ``name:qid`` and its own
    outputs plain.
    """
    spec = CALIBRATION_STEPS[step]
    return tuple(dict.fromkeys([*required_inputs(step, qubits), *spec.outputs]))


def check_task_name(step: StepName) -> str:
    """``CheckT1`` -> ``check-t1-check``: the recorded task name of a step's check."""
    return f"{step_task_name(step)}-check"


def _value(step: StepName, target: str, values: Mapping[str, float], key: str) -> float:
    if key not in values:
        raise CheckValueError(step, target, key, "has no recorded value (calibrate it first)")
    value = float(values[key])
    if not math.isfinite(value):
        raise CheckValueError(step, target, key, f"is {value}, not a finite number")
    return value


def _positive(step: StepName, target: str, values: Mapping[str, float], key: str) -> float:
    value = _value(step, target, values, key)
    if value <= 0:
        raise CheckValueError(step, target, key, f"is {value:g}, not positive")
    return value


class _Outcome:
    """A check's verdict being built."""

    def __init__(self) -> None:
        self.verdict = CheckVerdict.IN_SPEC
        self.reasons: list[str] = []
        self.estimates: dict[str, float] = {}

    def bad(self, reason: str) -> None:
        self.verdict = CheckVerdict.BAD_DATA
        self.reasons.append(reason)

    def out(self, reason: str) -> None:
        if self.verdict is CheckVerdict.IN_SPEC:
            self.verdict = CheckVerdict.OUT_OF_SPEC
        self.reasons.append(reason)


def _mean_and_error(y: FloatArray, repeats: int) -> tuple[FloatArray, float]:
    """Mean of each point measured ``repeats`` times in a row, and the error of a mean."""
    grouped = y.reshape(-1, repeats)
    spread = float(np.mean(np.std(grouped, axis=1, ddof=1))) if repeats > 1 else 0.0
    return grouped.mean(axis=1), spread / math.sqrt(repeats)


def _line_offset(depths: FloatArray) -> float | None:
    """Offset of a Lorentzian line (in spacings of the side points) from the centre point.

    ``depths`` at -1, 0 and +1 spacing of one half width. With depths ``d(x) = 1/((x-δ)²+1)``
    the asymmetry ``A = (d₊ - d₋)/(d₊ + d₋) = 2δ/(2 + δ²)``, inverted here; ``None`` when
    ``|A|`` is beyond the largest it reaches (the line is more than √2 spacings away).
    """
    minus, _, plus = (float(d) for d in depths)
    total = plus + minus
    if total <= 0:
        return None
    asymmetry = (plus - minus) / total
    if asymmetry == 0:
        return 0.0
    discriminant = 1 - 2 * asymmetry**2
    if discriminant < 0:
        return None
    return (1 - math.sqrt(discriminant)) / asymmetry


def _check_frequency(
    context: MeasurementContext, qid: str, values: Mapping[str, float], policy: MaintenancePolicy
) -> tuple[_Outcome, Mapping[str, float], list[Knob], list[Trace], Callable[..., None]]:
    step = StepName.CHECK_FREQUENCY
    p = policy.checks.CheckFrequency
    qubit = context.chip.qubit(qid)
    f = _positive(step, qid, values, "qubit_frequency")
    r = _positive(step, qid, values, "readout_frequency")
    spacing = p.linewidth_hz
    pattern = np.array([-1.0, 0.0, 1.0, 20.0])  # three near the line, one for the background
    readout = np.repeat(r + spacing * pattern, p.repeats)
    drive = np.repeat(f + spacing * pattern, p.repeats)
    outcome = _Outcome()

    def resonator(_: list[tuple[FloatArray, ...]]) -> tuple[FloatArray, ...]:
        return readout, qubit.acquire_resonator_spectroscopy(readout)

    def spectroscopy(_: list[tuple[FloatArray, ...]]) -> tuple[FloatArray, ...]:
        qubit.readout_frequency.set(r)
        return drive, qubit.acquire_qubit_spectroscopy(drive)

    def judge(data: list[tuple[FloatArray, ...]]) -> None:
        for (_, y), name, centre, tolerance in (
            (data[0], "readout", r, p.readout_tolerance_hz),
            (data[1], "qubit", f, p.qubit_tolerance_hz),
        ):
            means, error = _mean_and_error(y, p.repeats)
            depths = means[3] - means[:3]
            noise = max(error, 1e-12)
            outcome.estimates[f"{name}_depth_sigmas"] = float(depths[1] / noise)
            if float(np.max(depths)) < p.min_depth * noise:
                outcome.bad(
                    f"no {name} line within {spacing:g} Hz of {centre:g} Hz (deepest point "
                    f"{float(np.max(depths)) / noise:.1f} σ, needs {p.min_depth:g})"
                )
                continue
            offset = _line_offset(depths)
            if offset is None:
                outcome.out(f"the {name} line is more than {math.sqrt(2) * spacing:g} Hz away")
                continue
            offset_hz = offset * spacing
            outcome.estimates[f"{name}_offset_hz"] = offset_hz
            if abs(offset_hz) > tolerance:
                outcome.out(
                    f"the {name} line is {offset_hz:+.3g} Hz from the recorded {centre:g} Hz "
                    f"(tolerance {tolerance:g} Hz)"
                )

    knobs = [Knob(qubit.drive_amplitude, 0.0, "settings")]
    traces = [
        Trace((qubit.readout_frequency,), (qubit.resonator_response,), resonator),
        Trace((qubit.drive_frequency,), (qubit.spectroscopy_response,), spectroscopy),
    ]
    return outcome, {"qubit_frequency": f, "readout_frequency": r}, knobs, traces, judge


def _pulse_knobs(
    context: MeasurementContext,
    step: StepName,
    qid: str,
    values: Mapping[str, float],
    suffix: str = "",
    detuning: float = 0.0,
) -> tuple[list[Knob], dict[str, float]]:
    qubit = context.chip.qubit(qid)
    f = _positive(step, qid, values, f"qubit_frequency{suffix}")
    a = _positive(step, qid, values, f"pi_amplitude{suffix}")
    knobs = [
        Knob(qubit.drive_frequency, f + detuning, f"qubit_frequency{suffix}"),
        Knob(qubit.drive_amplitude, a, f"pi_amplitude{suffix}"),
    ]
    return knobs, {f"qubit_frequency{suffix}": f, f"pi_amplitude{suffix}": a}


def _check_rabi(
    context: MeasurementContext, qid: str, values: Mapping[str, float], policy: MaintenancePolicy
) -> tuple[_Outcome, Mapping[str, float], list[Knob], list[Trace], Callable[..., None]]:
    step = StepName.CHECK_RABI
    p = policy.checks.CheckRabi
    qubit = context.chip.qubit(qid)
    knobs, used = _pulse_knobs(context, step, qid, values)
    amplitudes = np.array([0.0, used["pi_amplitude"]])
    outcome = _Outcome()

    def acquire(_: list[tuple[FloatArray, ...]]) -> tuple[FloatArray, ...]:
        return amplitudes, qubit.acquire_rabi(amplitudes)

    def judge(data: list[tuple[FloatArray, ...]]) -> None:
        ((_, y),) = data
        ground, excited = float(y[0]), float(y[1])
        contrast = excited - ground
        outcome.estimates.update(ground_population=ground, contrast=contrast)
        if ground > p.max_ground_population:
            outcome.bad(f"P(1) is {ground:.3f} without a pulse (at most {p.max_ground_population})")
        elif contrast < p.min_contrast:
            outcome.out(
                f"a π pulse of {used['pi_amplitude']:g} V reaches a contrast of {contrast:.3f} "
                f"(at least {p.min_contrast})"
            )

    trace = Trace((qubit.drive_amplitude,), (qubit.excited_population,), acquire)
    return outcome, used, knobs[:1], [trace], judge


def _check_decay(
    step: StepName,
    context: MeasurementContext,
    qid: str,
    values: Mapping[str, float],
    policy: MaintenancePolicy,
) -> tuple[_Outcome, Mapping[str, float], list[Knob], list[Trace], Callable[..., None]]:
    output = "t1" if step is StepName.CHECK_T1 else "t2_echo"
    p = policy.checks.CheckT1 if step is StepName.CHECK_T1 else policy.checks.CheckT2Echo
    minimum = policy.of(output).minimum
    qubit = context.chip.qubit(qid)
    knobs, used = _pulse_knobs(context, step, qid, values)
    recorded = _positive(step, qid, values, output)
    used[output] = recorded
    delays = np.array([0.0, recorded, 5 * recorded])
    acquire_signal = qubit.acquire_t1 if step is StepName.CHECK_T1 else qubit.acquire_echo
    outcome = _Outcome()

    def acquire(_: list[tuple[FloatArray, ...]]) -> tuple[FloatArray, ...]:
        return delays, acquire_signal(delays)

    def judge(data: list[tuple[FloatArray, ...]]) -> None:
        ((_, y),) = data
        start, middle, end = (float(v) for v in y)
        contrast = start - end
        outcome.estimates["contrast"] = contrast
        if abs(contrast) < p.min_contrast:
            outcome.bad(
                f"no decay between delay 0 and {5 * recorded:g} s (contrast {contrast:.3f}, "
                f"at least {p.min_contrast})"
            )
            return
        ratio = (middle - end) / contrast
        estimate = math.inf if ratio >= 1 else (0.0 if ratio <= 0 else -recorded / math.log(ratio))
        outcome.estimates[output] = estimate
        floor = recorded * (1 - p.max_relative_drop)
        if estimate < floor:
            outcome.out(
                f"{output} is about {estimate:.3g} s, below {1 - p.max_relative_drop:.0%} of the "
                f"recorded {recorded:.3g} s"
            )
        elif minimum is not None and estimate < minimum:
            outcome.out(f"{output} is about {estimate:.3g} s, below the minimum {minimum:g} s")

    trace = Trace((qubit.delay,), (qubit.excited_population,), acquire)
    return outcome, used, knobs, [trace], judge


def _check_ramsey(
    context: MeasurementContext, qid: str, values: Mapping[str, float], policy: MaintenancePolicy
) -> tuple[_Outcome, Mapping[str, float], list[Knob], list[Trace], Callable[..., None]]:
    step = StepName.CHECK_RAMSEY
    p = policy.checks.CheckRamsey
    qubit = context.chip.qubit(qid)
    knobs, used = _pulse_knobs(context, step, qid, values, detuning=p.artificial_detuning_hz)
    period = 1 / p.artificial_detuning_hz
    # The fringe's phase at delay 0 and one period later, each from two points a quarter
    # period apart (its two quadratures): the phase the pulses themselves add is the same at
    # both, so the difference is the offset's alone. Half a period gives the middle.
    delays = np.array([0.0, period / 4, period / 2, period, 5 * period / 4])
    outcome = _Outcome()

    def acquire(_: list[tuple[FloatArray, ...]]) -> tuple[FloatArray, ...]:
        return delays, qubit.acquire_ramsey(delays)

    def judge(data: list[tuple[FloatArray, ...]]) -> None:
        ((_, y),) = data
        start, start_quarter, half, late, late_quarter = (float(v) for v in y)
        middle = (start + half) / 2
        amplitude = (start - half) / 2
        outcome.estimates["contrast"] = 2 * amplitude
        if 2 * amplitude < p.min_contrast:
            outcome.bad(f"fringe contrast {2 * amplitude:.3f} (at least {p.min_contrast})")
            return
        # P(t) = middle + amplitude cos(2π (Δ - δ) t + φ₀); a quarter period later the
        # cosine is minus the sine. One period later the phase moved by -2π δ / Δ (read
        # without ambiguity for |δ| below Δ / 2).
        early_phase = math.atan2(middle - start_quarter, start - middle)
        late_phase = math.atan2(middle - late_quarter, late - middle)
        turn = (late_phase - early_phase + math.pi) % (2 * math.pi) - math.pi
        offset = -turn / (2 * math.pi * period)
        outcome.estimates["qubit_offset_hz"] = offset
        if abs(offset) > p.tolerance_hz:
            outcome.out(
                f"the fringes put the qubit {offset:+.3g} Hz from the recorded "
                f"{used['qubit_frequency']:g} Hz (tolerance {p.tolerance_hz:g} Hz)"
            )

    trace = Trace((qubit.delay,), (qubit.excited_population,), acquire)
    return outcome, used, knobs, [trace], judge


def _check_readout(
    context: MeasurementContext, qid: str, values: Mapping[str, float], policy: MaintenancePolicy
) -> tuple[_Outcome, Mapping[str, float], list[Knob], list[Trace], Callable[..., None]]:
    step = StepName.CHECK_READOUT_FIDELITY
    p = policy.checks.CheckReadoutFidelity
    minimum = policy.of("readout_fidelity").minimum
    qubit = context.chip.qubit(qid)
    knobs, used = _pulse_knobs(context, step, qid, values)
    r = _positive(step, qid, values, "readout_frequency")
    recorded = _value(step, qid, values, "readout_fidelity")
    used.update(readout_frequency=r, readout_fidelity=recorded)
    knobs.append(Knob(qubit.readout_frequency, r, "readout_frequency"))
    outcome = _Outcome()

    def acquire(_: list[tuple[FloatArray, ...]]) -> tuple[FloatArray, ...]:
        prepared, index, i, q = qubit.acquire_single_shots(p.shots)
        return prepared.astype(np.float64), index.astype(np.float64), i, q

    def judge(data: list[tuple[FloatArray, ...]]) -> None:
        ((prepared, _, i, q),) = data
        try:
            fit = fit_assignment(prepared, i, q)
        except FitProblem as e:
            outcome.bad(e.reason)
            return
        fidelity, error = fit.fidelity.value, fit.fidelity.error
        outcome.estimates["readout_fidelity"] = fidelity
        floor = recorded - p.max_drop
        if fidelity + 3 * error < floor:
            outcome.out(
                f"readout fidelity {fidelity:.3f} ± {error:.3f} is below the recorded "
                f"{recorded:.3f} by more than {p.max_drop:g}"
            )
        elif minimum is not None and fidelity + 3 * error < minimum:
            outcome.out(f"readout fidelity {fidelity:.3f} is below the minimum {minimum:g}")

    trace = Trace((qubit.prepared_state, qubit.shot), (qubit.readout_i, qubit.readout_q), acquire)
    return outcome, used, knobs, [trace], judge


def _check_cz(
    context: MeasurementContext, pair: str, values: Mapping[str, float], policy: MaintenancePolicy
) -> tuple[_Outcome, Mapping[str, float], list[Knob], list[Trace], Callable[..., None]]:
    step = StepName.CHECK_CZ
    p = policy.checks.CheckCZ
    minimum = policy.of("cz_fidelity").minimum
    channel = context.chip.pair(pair)
    target = channel.pair_id
    knobs: list[Knob] = []
    used: dict[str, float] = {}
    for qubit in channel.qubits:
        more, values_used = _pulse_knobs(
            context, step, qubit.short_name, values, suffix=f":{qubit.short_name}"
        )
        knobs.extend(more)
        used.update(values_used)
    recorded = _value(step, target, values, "cz_fidelity")
    used["cz_fidelity"] = recorded
    lengths = np.array([p.short_length, p.long_length], dtype=np.int64)
    outcome = _Outcome()

    def acquire(_: list[tuple[FloatArray, ...]]) -> tuple[FloatArray, ...]:
        return lengths.astype(np.float64), channel.acquire_benchmarking(lengths)

    def judge(data: list[tuple[FloatArray, ...]]) -> None:
        ((_, y),) = data
        short, long = float(y[0]) - 0.25, float(y[1]) - 0.25  # decays towards 1/4
        if short < 0.1:
            outcome.bad(f"survival {short + 0.25:.3f} after {p.short_length} layer(s)")
            return
        ratio = long / short
        layers = p.long_length - p.short_length
        decay = 0.0 if ratio <= 0 else min(ratio, 1.0) ** (1 / layers)
        fidelity = decay_to_two_qubit_fidelity(decay)
        # Shot noise of the two survivals (binomial, the chip's shots), carried to the fidelity.
        shots = max(int(context.chip.shots.get()), 1)
        relative = math.hypot(
            *(
                math.sqrt(max(v * (1 - v), 1 / shots) / shots) / max(abs(d), 1e-9)
                for v, d in ((float(y[0]), short), (float(y[1]), long))
            )
        )
        error = 0.75 * decay * relative / layers
        outcome.estimates.update(cz_fidelity=fidelity, cz_fidelity_error=error)
        if fidelity + 3 * error < recorded - p.max_drop:
            outcome.out(
                f"CZ fidelity about {fidelity:.4f} ± {error:.4f}, below the recorded "
                f"{recorded:.4f} by more than {p.max_drop:g}"
            )
        elif minimum is not None and fidelity + 3 * error < minimum:
            outcome.out(
                f"CZ fidelity about {fidelity:.4f} ± {error:.4f}, below the minimum {minimum:g}"
            )

    trace = Trace((channel.sequence_length,), (channel.survival_probability,), acquire)
    return outcome, used, knobs, [trace], judge


def run_check(
    context: MeasurementContext,
    step: StepName,
    target: str,
    values: Mapping[str, float],
    policy: MaintenancePolicy,
) -> CheckResult:
    """Check ``step`` on ``target`` at the recorded ``values``: one short QCoDeS run.

    Args:
        context: Chip, metadata instrument and database.
        step: The calibration step whose parameters are checked.
        target: The qubit (``Q0``) or pair (``Q0-Q1``).
        values: The recorded values by :func:`checked_keys` key.
        policy: The thresholds (``policy.checks``) and the parameters' minimums.

    Raises:
        UnknownQubitError, UnknownPairError: ``target`` is not on the chip.
        CheckValueError: A recorded value is missing, not finite or not positive.
        InvalidInputError: A recorded value is outside a knob's range.
        MeasurementDatabaseError: The database cannot be written.
    """
    builders = {
        StepName.CHECK_FREQUENCY: _check_frequency,
        StepName.CHECK_RABI: _check_rabi,
        StepName.CHECK_T1: lambda c, t, v, p: _check_decay(StepName.CHECK_T1, c, t, v, p),
        StepName.CHECK_RAMSEY: _check_ramsey,
        StepName.CHECK_T2_ECHO: lambda c, t, v, p: _check_decay(StepName.CHECK_T2_ECHO, c, t, v, p),
        StepName.CHECK_READOUT_FIDELITY: _check_readout,
        StepName.CHECK_CZ: _check_cz,
    }
    outcome, used, knobs, traces, judge = builders[step](context, target, values, policy)
    canonical = context.chip.pair(target).pair_id if "-" in target else target
    recording = context.record(step, canonical, used, knobs, traces)
    judge(recording.data)
    return CheckResult(
        step=step,
        target=canonical,
        verdict=outcome.verdict,
        reasons=outcome.reasons or ["every point as the recorded values predict"],
        estimates=outcome.estimates,
        values=dict(used),
        points=sum(len(arrays[0]) for arrays in recording.data),
        run_id=recording.run_id,
        guid=recording.guid,
        measured_at=utc_now(),
        dataset=context.dataset_of(step, recording),
    )


def check_values(
    step: StepName, target: str, current: Mapping[str, ParameterVersion]
) -> dict[str, float]:
    """The numeric values of the versions a check reads, by :func:`checked_keys` key."""
    values: dict[str, float] = {}
    for key, version in current.items():
        value = version.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CheckValueError(step, target, key, f"is {value!r}, not a number")
        values[key] = float(value)
    return values


def current_of_check(
    versions: Mapping[tuple[str, str], ParameterVersion], step: StepName, target: str
) -> dict[str, ParameterVersion]:
    """The current versions a check of ``step`` on ``target`` reads, by its keys.

    Args:
        versions: The chip's current versions by ``(parameter_name, qid)``.
        step: The step.
        target: Its qubit or pair.

    Raises:
        CheckValueError: A version the check needs is not recorded.
    """
    spec = CALIBRATION_STEPS[step]
    qubits = tuple(target.split("-"))
    found: dict[str, ParameterVersion] = {}
    wanted: list[tuple[str, str, str]] = []
    if spec.scope is Scope.QUBIT:
        wanted = [(name, target, name) for name in checked_keys(step, qubits)]
    else:
        wanted = [(n, q, input_key(n, q)) for q in qubits for n in spec.inputs]
        wanted += [(name, target, name) for name in spec.outputs]
    for name, qid, key in wanted:
        version = versions.get((name, qid))
        if version is None:
            raise CheckValueError(step, target, key, "has no recorded value (calibrate it first)")
        found[key] = version
    return found


def check_record(
    result: CheckResult,
    used: Mapping[str, ParameterVersion],
    *,
    project_id: str,
    chip_id: str,
    execution_id: str,
    task_id: str,
    agent: Agent,
    started_at: datetime,
) -> TaskRecord:
    """The provenance record of a check: an activity of type ``check`` that used ``used``
    and the short QCoDeS run it measured.

    The activity completes (the check measured); a check that found its parameters out of
    spec, or bad data, carries the verdict and its reasons in ``error_message``
    (``out-of-spec: ...``), so lineage and the activity list show what it found.
    """
    message = None
    if not result.passed:
        message = f"{result.verdict.value}: " + "; ".join(result.reasons)
    return TaskRecord(
        project_id=project_id,
        chip_id=chip_id,
        execution_id=execution_id,
        task_id=task_id,
        task_name=check_task_name(result.step),
        task_type=CHECK_TASK_TYPE,
        qid=result.target,
        started_at=started_at,
        ended_at=result.measured_at,
        status=ActivityStatus.COMPLETED,
        agent=agent,
        inputs=[InputUse.of(version) for version in used.values()],
        datasets=[] if result.dataset is None else [result.dataset],
        error_message=message,
    )


def slug(text: str) -> str:
    """Lower-case kebab form of ``text`` for artifact keys."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "chip"
